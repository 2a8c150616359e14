"""The package's version: pyproject.toml is the one place it is written; this reads it back from
the installed metadata."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bfn-codec")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
