"""The plain-language verdict: is the loop waiting for data, and does memory keep growing?

Thresholds: at least 25% of loop time in ``next()`` is input-bound, 5-25% partly, below 5%
compute-bound. Workers averaging 80% of a core or more are busy decoding; below that they
wait on I/O or on moving batches between processes. Memory that grows by more than 32 MiB
and 5% of its peak per epoch is flagged (copy-on-write of Python objects in workers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

INPUT_BOUND, PARTLY, BUSY_CPU = 0.25, 0.05, 80.0
GROWTH_BYTES, GROWTH_SHARE = 32 * 2**20, 0.05


class _Process(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def mean_cpu(self) -> float: ...


def diagnose(
    batches: int,
    wait_fraction: float,
    processes: Sequence[_Process],
    growth_per_epoch: float | None,
    peak_pss: int | None,
    mode: str | None = None,
) -> str:
    """One or two sentences: the bottleneck with what to try, then any memory growth.

    ``mode`` is the loadwise dataset's access mode, if known: advice never suggests the
    mode already in use.
    """
    if batches == 0:
        return "no batches were seen: iterate the loader through the monitor."
    workers = [p for p in processes if "worker" in p.role]
    sentences = [_time_verdict(wait_fraction, workers, mode)]
    if growth_per_epoch is not None and peak_pss:
        grows = growth_per_epoch > max(GROWTH_BYTES, GROWTH_SHARE * peak_pss)
        if grows:
            sentences.append(
                f"memory grows {growth_per_epoch / 2**20:,.0f} MiB per epoch: a dataset of "
                "Python objects copied page by page into workers? pack it (`loadwise pack`) "
                "and open it with `mode='eager'` (one shared copy)."
            )
    return " ".join(sentences)


def _time_verdict(fraction: float, workers: Sequence[_Process], mode: str | None) -> str:
    share = f"{fraction:.0%} of loop time waiting for data"
    if fraction < PARTLY:
        return f"compute-bound: {share}; loading is not the bottleneck."
    kind = "input-bound" if fraction >= INPUT_BOUND else "partly input-bound"
    return f"{kind}: {share}; {_advice(workers, mode)}."


def _advice(workers: Sequence[_Process], mode: str | None) -> str:
    if mode == "eager":
        if not workers:
            return (
                "batches already come from RAM in one gather each (eager, no workers): the "
                "step is shorter than copying a batch; read fewer `fields`, or do more per step"
            )
        return (
            f"eager data is in RAM: the {len(workers)} workers only add the cost of moving "
            "batches between processes; use `num_workers=0`"
        )
    if not workers:
        return (
            "try `mode='eager'` on a packed dataset (one gather per batch) or, if each "
            "sample costs CPU (decoding, augmenting), more workers (`num_workers=2` or more)"
        )
    cpu = sum(w.mean_cpu for w in workers) / len(workers)
    if cpu >= BUSY_CPU:
        return (
            f"the {len(workers)} workers are busy ({cpu:.0f}% of a core each): add workers if "
            "cores are free, or make samples cheaper (`loadwise pack` decodes once, "
            "`mode='eager'` reads from RAM)"
        )
    return (
        f"the {len(workers)} workers are mostly idle ({cpu:.0f}% of a core each): they wait "
        "on storage or on moving batches between processes; try `mode='eager'`, and for "
        "in-RAM data `num_workers=0`"
    )
