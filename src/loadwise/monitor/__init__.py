"""Monitors: what a loading pipeline costs while it runs (memory of main + workers)."""

from loadwise.monitor.memory import PeakMemory, ProcessMemory, TreeMemory, process_memory

__all__ = ["PeakMemory", "ProcessMemory", "TreeMemory", "process_memory"]
