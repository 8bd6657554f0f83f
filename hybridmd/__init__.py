"""hybridmd: coarse-step molecular dynamics with ML time super-resolution."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hybridmd")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
