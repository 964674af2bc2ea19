"""Bar charts of samples/s: one panel per workload, the limit as a horizontal line.

matplotlib comes with the ``plot`` extra and is imported only here, on its own Agg canvas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from loadwise.errors import MissingExtraError

Bars = Sequence[tuple[str, float]]


def draw_rates(
    panels: Mapping[str, Bars],
    path: str | Path,
    *,
    limits: Mapping[str, float] | None = None,
    title: str = "samples per second (log scale)",
) -> Path:
    """Write one bar panel per entry of ``panels`` (label -> samples/s) to ``path`` (PNG)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtraError(
            "plots need matplotlib: install the `plot` extra (pip install 'loadwise[plot]')."
        ) from exc
    limits = limits or {}
    width = max(6.0, 0.55 * max((len(b) for b in panels.values()), default=1) + 2)
    figure = Figure(figsize=(width, 3.6 * max(len(panels), 1)), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes_list = figure.subplots(max(len(panels), 1), 1, squeeze=False)[:, 0]
    for axes, (name, bars) in zip(axes_list, panels.items(), strict=False):
        labels = [label for label, _ in bars]
        rates = [max(rate, 1e-3) for _, rate in bars]
        axes.bar(range(len(bars)), rates, color="tab:blue")
        axes.set_xticks(range(len(bars)), labels, rotation=35, ha="right", fontsize=8)
        axes.set_yscale("log")
        axes.set_ylabel("samples/s")
        axes.set_title(name)
        if name in limits:
            axes.axhline(limits[name], color="tab:red", linestyle="--", label="limit")
            axes.legend(loc="upper right", fontsize=8)
    figure.suptitle(title)
    out = Path(path)
    figure.savefig(out, format="png", dpi=100)
    return out
