"""Monitors: what a loading pipeline costs while it runs, and reports of it.

``loadwise.monitor(loader)`` (the function; the package is ``loadwise.monitor`` only to
``import``, as with ``loadwise.loader``) wraps any loader: per batch it times
the wait for data and the step between batches; a thread samples memory and CPU of the main
process and every worker. ``stats()`` gives a frozen ``MonitorStats`` with a diagnosis;
``report`` renders it as a table, JSON or PNG. ``PeakMemory``/``process_memory`` measure
memory alone.
"""

from loadwise.monitor import report
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
    "report",
]
