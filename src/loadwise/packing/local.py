"""The local backend: this machine's processes prepare the source (``pipeline.py``), one
partition is written in this process, and a killed pack resumes from its progress."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from loadwise.packing.options import PackPlan
from loadwise.packing.partition import PartitionResult, write_partition
from loadwise.packing.pipeline import prepared
from loadwise.packing.progress import PackProgress
from loadwise.sources import Source


def pack_locally(
    src: Source, staging: Path, plan: PackPlan, done: PackProgress, progress: bool
) -> list[PartitionResult]:
    """The whole source as one partition in ``staging`` (after what ``done`` finished)."""
    bar = tqdm(total=len(src), desc="pack", unit="item", disable=not progress, leave=False)
    bar.update(done.items_done)
    with bar:
        pieces = prepared(src, plan, done.items_done, done.fields)
        part = write_partition(
            pieces, staging, plan, categories=src.categories, progress=done, on_items=bar.update
        )
    return [part]
