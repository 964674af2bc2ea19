"""Monitors: what a loading pipeline costs while it runs, and reports of it.

``loadwise.monitor(loader)`` (this package is callable) wraps any loader: per batch it times
the wait for data and the step between batches; a thread samples memory and CPU of the main
process and every worker. ``stats()`` gives a frozen ``MonitorStats`` with a diagnosis;
``report`` renders it as a table, JSON or PNG. ``PeakMemory``/``process_memory`` measure
memory alone.
"""

import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from loadwise.monitor.loop import Monitor, monitor
from loadwise.monitor.memory import PeakMemory, ProcessMemory, TreeMemory, process_memory
from loadwise.monitor.stats import EpochSummary, MonitorStats, ProcessSummary

__all__ = [
    "EpochSummary",
    "Monitor",
    "MonitorStats",
    "PeakMemory",
    "ProcessMemory",
    "ProcessSummary",
    "TreeMemory",
    "monitor",
    "process_memory",
]


class _CallableModule(ModuleType):
    """Lets ``loadwise.monitor(loader)`` work while ``loadwise.monitor.X`` stays a package."""

    def __call__(self, loader: Iterable[Any], **options: Any) -> Monitor:
        return monitor(loader, **options)


sys.modules[__name__].__class__ = _CallableModule
