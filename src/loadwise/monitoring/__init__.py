"""Monitors: what a loading pipeline costs while it runs, and reports of it.

``loadwise.monitor(loader)`` (the function, defined in ``monitoring.loop``) wraps any
loader: per batch it times
the wait for data and the step between batches; a thread samples memory and CPU of the main
process and every worker. ``stats()`` gives a frozen ``MonitorStats`` with a diagnosis;
``report`` renders it as a table, JSON or PNG. ``PeakMemory``/``process_memory`` measure
memory alone.
"""

from loadwise.monitoring import report
from loadwise.monitoring.loop import Monitor, monitor
from loadwise.monitoring.memory import PeakMemory, ProcessMemory, TreeMemory, process_memory
from loadwise.monitoring.stats import EpochSummary, MonitorStats, ProcessSummary

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
