"""ldm: a linked, pseudonymised population health data model for a city."""

import warnings
from importlib.metadata import PackageNotFoundError, version

# With the spark extra installed, Great Expectations imports pyspark, which warns as it is imported
# that it is not tested with pandas 3 (which ldm pins): on every command, about nothing ldm does (the
# marts on Spark read and write Arrow, not pyspark's pandas layer).
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

try:
    __version__ = version("ldm")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
