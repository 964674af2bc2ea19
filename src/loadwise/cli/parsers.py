"""Every command's arguments, built without importing the library (so ``--help`` is instant).

The choices below repeat a few library constants (folder layouts, ``on_error`` policies,
the default shard size, the benchmarked modes) rather than import them: importing them
would load torch. ``tests/unit/cli/test_parsers.py`` checks they still match.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

LAYOUTS = ("auto", "classes", "omniglot")  # sources.folder.LAYOUTS
ON_ERROR = ("raise", "skip", "fallback")  # packing.options.ON_ERROR
DEFAULT_SHARD_MB = 128.0  # packing.options.DEFAULT_SHARD_BYTES / 2**20
BENCH_MODES = ("eager", "lazy", "cached", "streaming")  # bench.modes.MODES

WATCH_DOC = """\
``loadwise watch -- python train.py ...``: run a training script unchanged and report
where its loading time and memory went (wait for data, throughput, memory per process).

Every ``torch.utils.data.DataLoader`` the script iterates (loadwise's loaders use one) is
timed per batch; memory and CPU of the main process and each worker are sampled. Nothing in
the script changes: a startup hook is put on PYTHONPATH for the command's Python processes.
"""


def add_pack(commands: Any) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "pack", help="pack an image folder or archive once",
        description="Pack an image folder (or a .zip/.tar of one) into shards plus a manifest.",
    )  # fmt: skip
    p.add_argument("source", help="image folder or archive: <class>/<image> or "
                   "<alphabet>/<character>/<image>")  # fmt: skip
    p.add_argument("dest", help="folder to write the packed dataset to")
    p.add_argument("--layout", choices=LAYOUTS, default="auto", help="folder layout (auto)")
    p.add_argument("--image-size", type=int, nargs="+", metavar="N", help="resize: H W, or one N")
    p.add_argument("--image-mode", choices=("L", "RGB"), help="convert images to this mode")
    p.add_argument("--encoded", action="store_true", help="keep the files' bytes, decode on read")
    p.add_argument("--shard-mb", type=float, default=DEFAULT_SHARD_MB, help="shard size")
    p.add_argument("--workers", type=int, default=1, help="decode in this many processes")
    p.add_argument("--on-error", choices=ON_ERROR, default="raise", help="unreadable images")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    return p


def add_info(commands: Any) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "info", help="describe a packed dataset",
        description="Fields, sizes, shards and what `pack` skipped.",
    )  # fmt: skip
    p.add_argument("path", help="a folder written by `loadwise pack`")
    p.add_argument("--shards", action="store_true", help="list every shard")
    return p


def add_verify(commands: Any) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "verify", help="check shard checksums",
        description="Check every shard's size and checksum; exit 1 if any is damaged.",
    )  # fmt: skip
    p.add_argument("path", help="a folder written by `loadwise pack`, or its URL (s3://...)")
    p.add_argument(
        "--storage-options", metavar="JSON", type=json_object, default=None,
        help='fsspec options for a URL, e.g. \'{"endpoint_url": "http://127.0.0.1:9000", '
        '"key": "...", "secret": "..."}\'',
    )  # fmt: skip
    return p


def json_object(text: str) -> dict[str, Any]:
    """A JSON object given on the command line; anything else is refused by argparse."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"a JSON object is needed, found {text!r}")
    return value


def add_watch(commands: Any) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "watch", help="run a training command and report its data wait and memory",
        description=WATCH_DOC, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--json", metavar="PATH", help="also write the full report (with timelines)")
    p.add_argument("--plot", metavar="PNG", help="also draw throughput, wait and memory")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between memory samples")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    return p


def add_bench(commands: Any) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "bench", help="measure a packed dataset's loading speed",
        description="Samples/s, first batch and memory of each mode and worker count.",
    )  # fmt: skip
    p.add_argument("path", help="a folder written by `loadwise pack`")
    modes = ", ".join(BENCH_MODES)
    p.add_argument("--modes", nargs="+", default=list(BENCH_MODES), choices=BENCH_MODES,
                   metavar="MODE", help=f"modes to measure (default all: {modes})")  # fmt: skip
    p.add_argument("--workers", nargs="+", type=int, default=[0, 2], metavar="N",
                   help="DataLoader worker counts (default 0 2)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seconds", type=float, help="cut each epoch after this many seconds")
    p.add_argument("--plot", type=Path, help="also draw samples/s as a PNG here")
    p.add_argument("--json", type=Path, help="also write every figure as JSON here")
    return p


def add_tune(commands: Any) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "tune", help="find the fastest DataLoader options",
        description="Measure DataLoader options, print the ranking and the best config. The "
        "winner is cached ($LOADWISE_CACHE/tune/), so loader(..., config='auto') uses it.",
    )  # fmt: skip
    p.add_argument("path", help="a folder written by `loadwise pack`")
    p.add_argument("--mode", default="auto", help="access mode (default auto)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seconds", type=float, default=2.0, help="time per candidate (default 2)")
    return p


#: Command name -> its arguments; ``main`` imports ``loadwise.cli.<name>_cmd`` only to run it.
COMMANDS: dict[str, Callable[[Any], argparse.ArgumentParser]] = {
    "pack": add_pack,
    "info": add_info,
    "verify": add_verify,
    "watch": add_watch,
    "bench": add_bench,
    "tune": add_tune,
}
