"""``loadwise tune PATH``: measure DataLoader options, print the ranking and the best config.

The winner is cached (``$LOADWISE_CACHE/tune/``), so ``loader(..., config="auto")`` uses it.
"""

from __future__ import annotations

import argparse

from loadwise.access.auto import open_dataset
from loadwise.loading.autotune import cache_path, save_result, tune
from loadwise.render import table


def run(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.path, args.mode)
    try:
        ranking = tune(dataset, batch_size=args.batch_size, seconds=args.seconds)
        path = cache_path(dataset, args.batch_size)
        if path is not None:
            save_result(path, ranking[0])
    finally:
        dataset.close()
    rows = [
        [str(i + 1), f"{r.samples_per_second:,.0f}", f"{r.first_batch_seconds:.3f} s", r.describe()]
        for i, r in enumerate(ranking)
    ]
    print(f"{args.path} ({dataset.mode}), batch size {args.batch_size}:")
    print(table(["rank", "samples/s", "first batch", "options"], rows))
    options = ", ".join(f"{k}={v!r}" for k, v in ranking[0].options.items())
    print(f"recommended: DataLoaderConfig(batch_size={args.batch_size}, {options})")
    if path is not None:
        print(f"cached in {path}")
    return 0
