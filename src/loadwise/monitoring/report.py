"""``MonitorStats`` as a text table, a JSON file and a PNG (the plot in ``plot.py``).

table = report.text(stats)           # the table ``loadwise watch`` prints
report.write_json(stats, "run.json")  # read back with ``report.read_json``
report.write_png(stats, "run.png")    # needs the ``plot`` extra (matplotlib)
"""

from __future__ import annotations

import json
from pathlib import Path

from loadwise.monitoring.stats import MonitorStats
from loadwise.render import human_bytes, table


def text(stats: MonitorStats, title: str | None = None) -> str:
    """Summary lines, one row per epoch, per stage (if timed), per process, then the diagnosis."""
    p = stats.wait_percentiles
    lines = [title] if title else []
    lines += [
        f"{stats.batches:,} batches, {stats.samples:,} samples in {stats.seconds:,.2f} s of "
        f"loop time: {stats.samples_per_second:,.0f} samples/s, "
        f"{human_bytes(stats.bytes_per_second)}/s",
        f"waiting for data {stats.data_wait_fraction:.1%} of loop time; one wait: "
        f"median {_ms(p.p50)}, p90 {_ms(p.p90)}, p99 {_ms(p.p99)}, max {_ms(p.max)}",
        f"memory (PSS, main + workers): peak {_maybe_bytes(stats.peak_pss)}, growth per "
        f"epoch {_maybe_bytes(stats.memory_growth_per_epoch, signed=True)}",
        "",
        table(
            [
                "epoch",
                "batches",
                "samples",
                "seconds",
                "waiting",
                "samples/s",
                "peak PSS",
                "end PSS",
            ],
            [
                [
                    str(e.epoch),
                    f"{e.batches:,}",
                    f"{e.samples:,}",
                    f"{e.seconds:,.2f}",
                    f"{e.data_wait_fraction:.1%}",
                    f"{e.samples_per_second:,.0f}",
                    _maybe_bytes(e.peak_pss),
                    _maybe_bytes(e.end_pss),
                ]
                for e in stats.epochs
            ],
        ),  # fmt: skip
    ]
    if stats.stages:
        lines += ["", _stage_table(stats)]
    if stats.processes:
        lines += ["", _process_table(stats)]
    lines += ["", f"diagnosis: {stats.diagnosis}"]
    return "\n".join(lines)


def _stage_table(stats: MonitorStats) -> str:
    rows = [[name, _ms(p.p50), _ms(p.p90), _ms(p.p99), _ms(p.max)]
            for name, p in stats.stages.items()]  # fmt: skip
    return (
        "per batch, each stage (fetch: the main process waiting for the batch; gather and "
        "decode: inside get_batch, in a worker or here; transform; transfer to the device):\n"
        + table(["stage", "p50", "p90", "p99", "max"], rows)
    )


def _process_table(stats: MonitorStats) -> str:
    rows = [
        [s.role, ",".join(map(str, s.pids)), human_bytes(s.peak_pss), human_bytes(s.peak_uss),
         human_bytes(s.peak_rss), _maybe_bytes(s.peak_anon), _maybe_bytes(s.peak_file),
         _maybe_bytes(s.peak_shmem), f"{s.mean_cpu:.0f}%"]
        for s in stats.processes
    ]  # fmt: skip
    header = ["process", "pid", "PSS", "USS", "RSS", "anon", "mapped", "shmem", "CPU"]
    return (
        "peak memory per process (anon: heap and eager arrays, pages a fork shares split "
        "between processes; mapped: page-cache-backed files such as shards and libraries; "
        "shmem: shared memory), mean CPU in % of one core:\n" + table(header, rows)
    )


def to_json(stats: MonitorStats) -> str:
    return json.dumps(stats.to_dict())


def write_json(stats: MonitorStats, path: str | Path) -> Path:
    """Write ``stats`` as JSON (with its timeline) and return the path."""
    path = Path(path)
    path.write_text(to_json(stats) + "\n")
    return path


def read_json(path: str | Path) -> MonitorStats:
    """Stats written by ``write_json``."""
    return MonitorStats.from_dict(json.loads(Path(path).read_text()))


def write_png(stats: MonitorStats, path: str | Path, title: str | None = None) -> Path:
    """Throughput, data wait and memory per process over time, as one PNG (``plot`` extra)."""
    from loadwise.monitoring.plot import draw

    return draw(stats, Path(path), title)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f} ms"


def _maybe_bytes(n: float | None, signed: bool = False) -> str:
    if n is None:
        return "n/a"
    sign = "+" if signed and n >= 0 else ("-" if n < 0 else "")
    return sign + human_bytes(abs(n))
