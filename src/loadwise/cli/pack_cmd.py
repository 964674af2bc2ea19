"""``loadwise pack SRC DEST``: pack an image folder into shards plus a manifest."""

from __future__ import annotations

import argparse

from loadwise.packing import ShardLayout, pack
from loadwise.render import human_bytes
from loadwise.sources import DecodeOptions, ImageOptions, folder_source


def run(args: argparse.Namespace) -> int:
    size = args.image_size
    image = ImageOptions(
        size=None if size is None else (size[0], size[-1]),
        mode=args.image_mode,
        encoded=args.encoded,
    )
    report = pack(
        folder_source(args.source, args.layout),
        args.dest,
        decode=DecodeOptions(image=image),
        layout=ShardLayout(shard_bytes=int(args.shard_mb * 2**20)),
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
