"""ldm: a linked, pseudonymised population health data model for a city."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ldm")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
