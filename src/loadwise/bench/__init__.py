"""Benchmarking packed datasets: every mode and worker count measured, and bar plots.

The timing itself (``measure``, ``Measurement``) lives in ``loadwise.monitoring.measure``,
below the loader, so ``loadwise tune`` can use it without importing this package.
"""

from loadwise.bench.modes import MODES, bench_modes
from loadwise.monitoring.measure import Measurement, measure

__all__ = ["MODES", "Measurement", "bench_modes", "measure"]
