"""Every error loadwise raises, in one hierarchy.

    LoadwiseError            base: catch this to catch everything loadwise raises
    ├── SourceError          the input to ``pack`` is missing, empty, unreadable or inconsistent
    ├── PackError            ``pack`` cannot write where it was asked to (destination exists)
    ├── FormatError          a packed dataset is not in a form this version can read
    │   └── IntegrityError   a shard or manifest is damaged (truncated, bit flips, wrong size)
    ├── ModeError            an unknown access mode, or one that cannot serve this dataset
    ├── SampleIndexError     a sample index out of range (also an ``IndexError``)
    ├── MissingExtraError    an optional dependency is not installed; names the extra
    ├── WorkerError          a DataLoader worker died or timed out; names it and its samples
    └── ConfigError          an argument is out of range; names it and the valid values
        └── ResumeError      a saved loader state does not fit this loader

Messages name the thing (file, shard, sample, argument) and say what to do next.
"""

from __future__ import annotations

from typing import Any


class LoadwiseError(Exception):
    """Base class of every error raised by loadwise."""


class SourceError(LoadwiseError, ValueError):
    """The data handed to ``pack`` cannot be read as asked."""


class PackError(LoadwiseError):
    """``pack`` cannot write the dataset where it was asked to."""


class FormatError(LoadwiseError):
    """A packed dataset is not in a form this version of loadwise can read."""


class IntegrityError(FormatError):
    """A shard or the manifest is damaged: never read data from it."""


class ModeError(LoadwiseError, ValueError):
    """An unknown access mode, or one that cannot serve this dataset."""


class MissingExtraError(LoadwiseError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class ConfigError(LoadwiseError, ValueError):
    """An argument is out of range; the message names it and the valid values."""


class SampleIndexError(LoadwiseError, IndexError):
    """A sample index is out of range; an ``IndexError`` so sequence iteration stops on it."""


class WorkerError(LoadwiseError, RuntimeError):
    """A DataLoader worker died (signal, OOM kill) or timed out; names it and its samples.

    Besides the message: ``worker`` (its index, None if unknown), ``pid`` (None if unknown),
    ``batches`` (the index arrays it held, in batch order) and ``epoch`` (None if unknown),
    so a handler can log, skip or re-check the samples without parsing text.
    """

    def __init__(
        self,
        message: str,
        *,
        worker: int | None = None,
        pid: int | None = None,
        batches: tuple[Any, ...] = (),
        epoch: int | None = None,
    ) -> None:
        super().__init__(message)
        self.worker, self.pid, self.batches, self.epoch = worker, pid, tuple(batches), epoch

    def __reduce__(self) -> tuple[Any, ...]:
        """Keep the attributes through pickling (exceptions pickle ``args`` only)."""
        return _worker_error, (str(self), self.worker, self.pid, self.batches, self.epoch)


class ResumeError(ConfigError):
    """A saved loader state cannot resume this loader (other data, seed or world size)."""


def _worker_error(
    message: str, worker: int | None, pid: int | None, batches: tuple[Any, ...], epoch: int | None
) -> WorkerError:
    return WorkerError(message, worker=worker, pid=pid, batches=batches, epoch=epoch)
