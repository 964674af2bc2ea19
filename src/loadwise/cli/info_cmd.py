"""``loadwise info PATH``: fields, sizes, shards and what ``pack`` skipped."""

from __future__ import annotations

import argparse

from loadwise.access.auto import choose_mode
from loadwise.format.reader import read_manifest
from loadwise.render import human_bytes, table


def run(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.path)
    size = human_bytes(manifest.num_bytes)
    print(f"{args.path}: {manifest.num_samples:,} samples, {len(manifest.shards)} shard(s), {size}")
    print(f"written by {manifest.created_by}, format version {manifest.version}")
    print(f"source: {manifest.source.get('kind', '?')} {manifest.source.get('root', '')}")
    rows = [
        [f.name, f.kind, f.dtype or "", "x".join(map(str, f.shape)), f.codec or "",
         str(len(f.categories)) if f.categories else ""]
        for f in manifest.fields
    ]  # fmt: skip
    print(table(["field", "kind", "dtype", "shape", "codec", "categories"], rows))
    if args.shards:
        rows = [
            [s.name, f"{s.num_samples:,}", human_bytes(s.num_bytes), s.xxh3_64]
            for s in manifest.shards
        ]
        print(table(["shard", "samples", "size", "xxh3_64"], rows))
    mode, reason = choose_mode(args.path)
    print(f"auto mode here: {mode} ({reason})")
    print(f"skipped while packing: {len(manifest.skipped)}")
    for skipped in manifest.skipped:
        print(f"  {skipped.item}: {skipped.reason}")
    return 0
