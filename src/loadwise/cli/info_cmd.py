"""``loadwise info PATH``: fields, sizes, shards and what ``pack`` could not read, by reason."""

from __future__ import annotations

import argparse
from typing import Any

from loadwise.access.auto import choose_mode
from loadwise.format.reader import read_manifest
from loadwise.format.spec import Manifest
from loadwise.packing.fallback import VALID
from loadwise.render import human_bytes, table
from loadwise.sources.failures import count_failures


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
    _print_failures(manifest)
    return 0


def _print_failures(manifest: Manifest) -> None:
    """Items ``pack`` could not read, by reason, and whether they are stored as placeholders
    (``on_error="fallback"``: their ``valid`` is False) or left out."""
    if not manifest.skipped:
        print("failed while packing: none")
        return
    kept = any(f.name == VALID for f in manifest.fields)
    how = "stored as placeholders with valid=False" if kept else "left out"
    print(f"failed while packing: {len(manifest.skipped):,} ({how})")
    for failure in count_failures(s.reason for s in manifest.skipped):
        print(f"  {failure.reason}: {failure.count:,} (first: {', '.join(failure.examples)})")


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
