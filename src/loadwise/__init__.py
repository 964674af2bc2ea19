"""loadwise: keep PyTorch training fed. Pack once, open in the right mode, load in batches."""

from loadwise._version import __version__
from loadwise.access import LoadingMode, choose_mode
from loadwise.access import open_dataset as open
from loadwise.errors import LoadwiseError
from loadwise.format import PackReport, pack
from loadwise.loader import DataLoaderConfig, Loader, loader

__all__ = [
    "DataLoaderConfig",
    "Loader",
    "LoadingMode",
    "LoadwiseError",
    "PackReport",
    "__version__",
    "choose_mode",
    "loader",
    "open",
    "pack",
]
