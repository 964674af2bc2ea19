"""One PNG of a monitored run: throughput, data wait, and memory of each process over time.

matplotlib comes with the ``plot`` extra and is imported only here. The figure is drawn on
its own Agg canvas, so no global pyplot state or backend of the caller's is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from loadwise.errors import MissingExtraError
from loadwise.monitoring.stats import MonitorStats

_BINS, _PER_BIN = 60, 8  # at most 60 time bins, about 8 batches per bin on short runs
MiB = 2**20


def draw(stats: MonitorStats, path: Path, title: str | None = None) -> Path:
    """Write the three panels to ``path`` (PNG) and return it."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtraError(
            "plots need matplotlib: install the `plot` extra (pip install 'loadwise[plot]')."
        ) from exc
    figure = Figure(figsize=(9, 8), constrained_layout=True)
    FigureCanvasAgg(figure)
    rate, wait, memory = figure.subplots(3, 1, sharex=True)
    _throughput(rate, wait, stats)
    _memory(memory, stats)
    for axes in (rate, wait, memory):
        for start in stats.timeline.epoch_starts[1:]:
            axes.axvline(start, color="0.7", linewidth=0.8, linestyle=":")
    memory.set_xlabel("seconds since the first epoch began (dotted: epoch starts)")
    figure.suptitle(title or f"loadwise monitor: {stats.diagnosis.split(':')[0]}")
    figure.savefig(path, format="png", dpi=100)
    return path


def _bins(stats: MonitorStats) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per time bin: centre, samples/s, wait fraction, and the bin edges."""
    t = np.asarray(stats.timeline.arrived)
    bins = int(np.clip(t.size // _PER_BIN, 1, _BINS))
    end = float(t.max()) if t.size else 1.0
    edges = np.linspace(0.0, max(end, 1e-3), bins + 1)
    which = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, bins - 1)
    samples = np.bincount(which, weights=stats.timeline.samples, minlength=bins)
    waits = np.bincount(which, weights=stats.timeline.waits, minlength=bins)
    steps = np.bincount(which, weights=stats.timeline.steps, minlength=bins)
    loop = waits + steps
    fraction = np.divide(waits, loop, out=np.full(bins, np.nan), where=loop > 0)
    return (edges[:-1] + edges[1:]) / 2, samples / np.diff(edges), fraction, edges


def _throughput(rate: Any, wait: Any, stats: MonitorStats) -> None:
    centres, per_second, fraction, _ = _bins(stats)
    rate.plot(centres, per_second, color="tab:blue", marker=".")
    rate.set_ylabel("samples/s")
    rate.set_title(
        f"throughput: {stats.samples_per_second:,.0f} samples/s over the loop", loc="left"
    )
    wait.plot(centres, 100 * fraction, color="tab:red", marker=".")
    wait.set_ylim(0, 100)
    wait.set_ylabel("% of loop time")
    wait.set_title(f"waiting for data: {stats.data_wait_fraction:.0%} overall", loc="left")


def _memory(axes: Any, stats: MonitorStats) -> None:
    samples = stats.timeline.memory
    roles = [p.role for p in stats.processes]
    for role in roles:
        points = [(s.t, p) for s in samples for p in s.processes if p.role == role]
        if not points:
            continue
        t = [x for x, _ in points]
        # markers: a short run may hold only a sample or two, which a bare line would hide
        line = axes.plot(t, [p.pss / MiB for _, p in points], marker="o", label=f"{role} PSS")[0]
        private = [(p.anon if p.anon is not None else p.uss) / MiB for _, p in points]
        axes.plot(t, private, color=line.get_color(), linestyle="--", marker="x",
                  label=f"{role} private")  # fmt: skip
    if samples:
        axes.plot([s.t for s in samples], [s.total_pss / MiB for s in samples], color="black",
                  linewidth=1.5, marker="s", label="total PSS")  # fmt: skip
        axes.legend(fontsize="small", ncol=2)
    axes.set_ylabel("MiB")
    axes.set_title("memory per process: PSS (solid), private heap (dashed)", loc="left")
