"""``loadwise pack SRC DEST``: pack an image folder into shards plus a manifest."""

from __future__ import annotations

import argparse
from typing import Any

from loadwise.format.pack import DEFAULT_SHARD_BYTES, ON_ERROR, pack
from loadwise.render import human_bytes
from loadwise.sources import LAYOUTS, folder_source


def add_parser(commands: Any) -> None:
    p = commands.add_parser("pack", help="pack an image folder once", description=__doc__)
    p.add_argument("source", help="image folder: <class>/<image> or <alphabet>/<character>/<image>")
    p.add_argument("dest", help="folder to write the packed dataset to")
    p.add_argument("--layout", choices=LAYOUTS, default="auto", help="folder layout (auto)")
    p.add_argument("--image-size", type=int, nargs="+", metavar="N", help="resize: H W, or one N")
    p.add_argument("--image-mode", choices=("L", "RGB"), help="convert images to this mode")
    p.add_argument("--encoded", action="store_true", help="keep the files' bytes, decode on read")
    p.add_argument("--shard-mb", type=float, default=DEFAULT_SHARD_BYTES / 2**20, help="shard size")
    p.add_argument("--workers", type=int, default=1, help="decode in this many processes")
    p.add_argument("--on-error", choices=ON_ERROR, default="raise", help="unreadable images")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    size = args.image_size
    report = pack(
        folder_source(args.source, args.layout),
        args.dest,
        image_size=None if size is None else (size[0], size[-1]),
        image_mode=args.image_mode,
        encoded=args.encoded,
        shard_bytes=int(args.shard_mb * 2**20),
        workers=args.workers,
        on_error=args.on_error,
        overwrite=args.overwrite,
    )
    print(
        f"packed {report.num_samples:,} samples into {report.num_shards} shard(s), "
        f"{human_bytes(report.num_bytes)}, in {report.seconds:.1f} s: {report.path}"
    )
    for skipped in report.skipped:
        print(f"skipped {skipped.item}: {skipped.reason}")
    return 0
