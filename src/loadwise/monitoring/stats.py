"""``MonitorStats``: what a monitored loop cost, as one frozen value (and back from JSON).

Built by ``summarize`` from a ``BatchClock``'s records and the ``ResourceSampler``'s samples.
Loop time is data wait plus step time; ``data_wait_fraction`` is the share of it spent in
``next()``. Memory is read from the samples taken during each epoch (and up to a second after
its last batch); growth per epoch compares total PSS at the end of the first and last epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from loadwise.monitoring.clock import EpochSpan, Record
from loadwise.monitoring.diagnose import diagnose
from loadwise.monitoring.sampler import ProcessUse, ResourceSample

_SLACK = 1.0  # seconds after an epoch's last batch whose memory samples still count for it


@dataclass(frozen=True)
class Percentiles:
    """Seconds (of one ``next()``, or one batch's stage): median, 90th, 99th percentile, max."""

    p50: float
    p90: float
    p99: float
    max: float


@dataclass(frozen=True)
class EpochSummary:
    """One pass; ``peak_pss``/``end_pss`` (bytes, main + workers) None if never sampled."""

    epoch: int
    batches: int
    samples: int
    bytes: int
    wait_seconds: float
    step_seconds: float
    peak_pss: int | None
    end_pss: int | None

    @property
    def seconds(self) -> float:
        return self.wait_seconds + self.step_seconds

    @property
    def data_wait_fraction(self) -> float:
        return self.wait_seconds / self.seconds if self.seconds > 0 else 0.0

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ProcessSummary:
    """One role ("main", "worker 0", ...) over the run: peaks in bytes, mean CPU in % of a core.

    ``anon`` is anonymous memory (heap, eager arrays), ``file`` page-cache-backed mapped
    files, ``shmem`` shared memory (all PSS shares; None where the kernel does not split PSS).
    """

    role: str
    pids: tuple[int, ...]
    peak_pss: int
    peak_uss: int
    peak_rss: int
    peak_anon: int | None
    peak_file: int | None
    peak_shmem: int | None
    mean_cpu: float


@dataclass(frozen=True)
class Timeline:
    """Per batch (arrival time since the loop began, wait, step, samples, bytes), epoch
    starts, and the memory samples (``t`` also since the loop began): what the plots draw.
    """

    arrived: tuple[float, ...]
    waits: tuple[float, ...]
    steps: tuple[float, ...]
    samples: tuple[int, ...]
    bytes: tuple[int, ...]
    epoch_starts: tuple[float, ...]
    memory: tuple[ResourceSample, ...]


@dataclass(frozen=True)
class MonitorStats:
    """Where a loop's time and memory went; ``diagnosis`` says it in one or two sentences.

    ``stages`` holds per-batch percentiles of each stage a monitored loadwise loader timed
    (``fetch``, ``gather``, ``decode``, ``transform``, ``transfer``; empty otherwise).
    """

    batches: int
    samples: int
    bytes: int
    wait_seconds: float
    step_seconds: float
    wait_percentiles: Percentiles
    peak_pss: int | None
    memory_growth_per_epoch: float | None
    epochs: tuple[EpochSummary, ...]
    processes: tuple[ProcessSummary, ...]
    diagnosis: str
    timeline: Timeline
    stages: dict[str, Percentiles] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Loop time: data wait plus step time."""
        return self.wait_seconds + self.step_seconds

    @property
    def data_wait_fraction(self) -> float:
        return self.wait_seconds / self.seconds if self.seconds > 0 else 0.0

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers for JSON; the derived rates are included for readers of the file."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "timeline"}
        out["wait_percentiles"] = asdict(self.wait_percentiles)
        out["epochs"] = [asdict(e) for e in self.epochs]
        out["processes"] = [asdict(p) for p in self.processes]
        out["timeline"] = _timeline_dict(self.timeline)
        out["stages"] = {name: asdict(p) for name, p in self.stages.items()}
        for name in ("seconds", "data_wait_fraction", "samples_per_second", "bytes_per_second"):
            out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitorStats:
        """The inverse of ``to_dict`` (derived rates are recomputed, not read)."""
        kept = {f.name: data[f.name] for f in fields(cls) if f.name != "stages"}
        kept["stages"] = {name: Percentiles(**p) for name, p in data.get("stages", {}).items()}
        kept["wait_percentiles"] = Percentiles(**data["wait_percentiles"])
        kept["epochs"] = tuple(EpochSummary(**e) for e in data["epochs"])
        kept["processes"] = tuple(
            ProcessSummary(**{**p, "pids": tuple(p["pids"])}) for p in data["processes"]
        )
        kept["timeline"] = _timeline_from(data["timeline"])
        return cls(**kept)


def summarize(
    records: Sequence[Record],
    spans: Sequence[EpochSpan],
    samples: Sequence[ResourceSample],
    mode: str | None = None,
    stages: dict[str, list[float]] | None = None,
) -> MonitorStats:
    """Stats of the batches in ``spans`` and the memory samples taken during them;
    ``mode`` (the dataset's access mode, if known) tailors the diagnosis; ``stages`` are
    per-batch seconds of each stage."""
    start = spans[0].started if spans else 0.0
    waits, steps, arrived, epochs, kept = [], [], [], [], []
    for span in spans:
        batch = records[span.first : span.stop]
        span_waits, span_steps = [], []
        previous: float | None = None  # the first wait runs from ``iter()``: workers starting
        for asked, got, _, _ in batch:
            span_waits.append(got - (span.started if previous is None else asked))
            span_steps.append(0.0 if previous is None else asked - previous)
            previous = got
            arrived.append(got - start)
        waits += span_waits
        steps += span_steps
        mine = [s for s in samples if span.started <= s.t <= span.ended + _SLACK]
        kept += mine
        epochs.append(_epoch(span, batch, span_waits, span_steps, mine))
    wait_total = sum(e.wait_seconds for e in epochs)
    step_total = sum(e.step_seconds for e in epochs)
    ends = [e.end_pss for e in epochs if e.end_pss is not None]
    growth = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) >= 2 else None
    peak = max((s.total_pss for s in kept), default=None)
    processes = _processes(kept)
    chosen = [records[i] for span in spans for i in range(span.first, span.stop)]
    timeline = Timeline(
        arrived=tuple(arrived), waits=tuple(waits), steps=tuple(steps),
        samples=tuple(r[2] for r in chosen), bytes=tuple(r[3] for r in chosen),
        epoch_starts=tuple(s.started - start for s in spans),
        memory=tuple(_shifted(s, start) for s in _unique(kept)),
    )  # fmt: skip
    fraction = wait_total / (wait_total + step_total) if wait_total + step_total > 0 else 0.0
    return MonitorStats(
        batches=len(chosen), samples=sum(r[2] for r in chosen), bytes=sum(r[3] for r in chosen),
        wait_seconds=wait_total, step_seconds=step_total, wait_percentiles=_percentiles(waits),
        peak_pss=peak, memory_growth_per_epoch=growth, epochs=tuple(epochs),
        processes=processes,
        diagnosis=diagnose(len(chosen), fraction, processes, growth, peak, mode),
        timeline=timeline,
        stages={name: _percentiles(seconds) for name, seconds in (stages or {}).items()},
    )  # fmt: skip


def _epoch(
    span: EpochSpan,
    batch: Sequence[Record],
    waits: list[float],
    steps: list[float],
    memory: list[ResourceSample],
) -> EpochSummary:
    return EpochSummary(
        epoch=span.epoch, batches=len(batch), samples=sum(r[2] for r in batch),
        bytes=sum(r[3] for r in batch), wait_seconds=sum(waits) + span.tail_wait,
        step_seconds=sum(steps) + span.tail_step,
        peak_pss=max((s.total_pss for s in memory), default=None),
        end_pss=memory[-1].total_pss if memory else None,
    )  # fmt: skip


def _percentiles(waits: list[float]) -> Percentiles:
    if not waits:
        return Percentiles(0.0, 0.0, 0.0, 0.0)
    p50, p90, p99 = (float(v) for v in np.percentile(waits, [50, 90, 99]))
    return Percentiles(p50, p90, p99, max(waits))


def _processes(samples: Sequence[ResourceSample]) -> tuple[ProcessSummary, ...]:
    """Per role: peaks of each figure and mean CPU, main first, then workers in order."""
    by_role: dict[str, list[ProcessUse]] = {}
    for sample in _unique(samples):
        for use in sample.processes:
            by_role.setdefault(use.role, []).append(use)
    return tuple(_process(role, uses) for role, uses in sorted(by_role.items(), key=_order))


def _order(item: tuple[str, Any]) -> tuple[int, int, str]:
    role = item[0]
    number = role.rsplit(" ", 1)[-1]
    return (0 if role == "main" else 1, int(number) if number.isdigit() else 0, role)


def _process(role: str, uses: list[ProcessUse]) -> ProcessSummary:
    def peak(name: str) -> int | None:
        values = [getattr(u, name) for u in uses if getattr(u, name) is not None]
        return max(values) if values else None

    return ProcessSummary(
        role=role, pids=tuple(sorted({u.pid for u in uses})), peak_pss=max(u.pss for u in uses),
        peak_uss=max(u.uss for u in uses), peak_rss=max(u.rss for u in uses),
        peak_anon=peak("anon"), peak_file=peak("file"), peak_shmem=peak("shmem"),
        mean_cpu=sum(u.cpu for u in uses) / len(uses),
    )  # fmt: skip


def _unique(samples: Sequence[ResourceSample]) -> list[ResourceSample]:
    """Samples in time order, each once (epoch windows may overlap)."""
    return sorted({id(s): s for s in samples}.values(), key=lambda s: s.t)


def _shifted(sample: ResourceSample, start: float) -> ResourceSample:
    return ResourceSample(
        sample.t - start, sample.processes, sample.system_memory_percent,
        sample.system_cpu_percent,
    )  # fmt: skip


def _timeline_dict(timeline: Timeline) -> dict[str, Any]:
    """Columns (one list per figure), so long runs stay compact on disk."""
    out: dict[str, Any] = {
        name: list(getattr(timeline, name))
        for name in ("arrived", "waits", "steps", "samples", "bytes", "epoch_starts")
    }
    out["memory"] = [
        {**asdict(s), "processes": [asdict(p) for p in s.processes]} for s in timeline.memory
    ]
    return out


def _timeline_from(data: dict[str, Any]) -> Timeline:
    memory = tuple(
        ResourceSample(
            s["t"],
            tuple(ProcessUse(**p) for p in s["processes"]),
            s["system_memory_percent"],
            s["system_cpu_percent"],
        )  # fmt: skip
        for s in data["memory"]
    )
    columns = ("arrived", "waits", "steps", "samples", "bytes", "epoch_starts")
    return Timeline(**{name: tuple(data[name]) for name in columns}, memory=memory)
