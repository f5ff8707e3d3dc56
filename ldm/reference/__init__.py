"""Public reference data shipped with ldm (see PROVENANCE.md in this folder for sources and licences)."""

from importlib.resources import files
from pathlib import Path


def reference_path(name: str) -> Path:
    """Path of a reference file in this package, e.g. reference_path("esp2013_19bands.csv")."""
    path = Path(str(files(__package__).joinpath(name)))
    if not path.exists():
        raise FileNotFoundError(f"reference file {name} is not part of ldm/reference")
    return path
