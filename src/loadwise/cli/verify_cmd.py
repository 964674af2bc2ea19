"""``loadwise verify PATH``: check every shard's size and checksum; exit 1 if any is damaged."""

from __future__ import annotations

import argparse

from loadwise.format.verify import verify
from loadwise.render import human_bytes


def run(args: argparse.Namespace) -> int:
    report = verify(args.path, storage_options=args.storage_options)
    for problem in report.problems:
        print(f"DAMAGED {problem.shard}: {problem.problem}")
    verdict = "ok" if report.ok else f"{len(report.problems)} damaged"
    print(
        f"{report.shards_checked} shard(s), {human_bytes(report.bytes_checked)} checked: {verdict}"
    )
    return 0 if report.ok else 1
