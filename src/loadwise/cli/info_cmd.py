"""``loadwise info PATH``: fields, sizes, shards and what ``pack`` skipped."""

from __future__ import annotations

import argparse
from typing import Any

from loadwise.access.auto import choose_mode
from loadwise.format.reader import read_manifest
from loadwise.render import human_bytes, table


def run(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.path)
    size = human_bytes(manifest.num_bytes)
    print(f"{args.path}: {manifest.num_samples:,} samples, {len(manifest.shards)} shard(s), {size}")
    print(f"written by {manifest.created_by}, format version {manifest.version}")
    print(f"source: {manifest.source.get('kind', '?')} {manifest.source.get('root', '')}")
    if "images" in manifest.source:
        print(f"images: {manifest.source['images']}")
    rows = [[f.name, f.kind, _details(f.to_dict())] for f in manifest.fields]
    print(table(["field", "kind", "details"], rows))
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


def _details(entry: dict[str, Any]) -> str:
    """A field's own options as ``key=value`` (shapes as ``1x105x105``, categories counted)."""
    parts = []
    for key, value in entry.items():
        if key in ("name", "kind") or value is None:
            continue
        if key == "shape":
            value = "x".join(map(str, value)) or "scalar"
        elif key == "categories":
            value = f"{len(value)} named"
        parts.append(f"{key}={value}")
    return ", ".join(parts)
