"""Access modes: the same samples served from shared RAM, a memory map, an LRU or a stream."""

from loadwise.access.auto import MODES, LoadingMode, choose_mode, open_dataset
from loadwise.access.base import Batch, PackedBase, PackedDataset
from loadwise.access.cached import CachedDataset
from loadwise.access.eager import EagerDataset
from loadwise.access.lazy import LazyDataset
from loadwise.access.streaming import StreamingDataset

__all__ = [
    "MODES",
    "Batch",
    "CachedDataset",
    "EagerDataset",
    "LazyDataset",
    "LoadingMode",
    "PackedBase",
    "PackedDataset",
    "StreamingDataset",
    "choose_mode",
    "open_dataset",
]
