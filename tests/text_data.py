"""Real text for the tests: prose from the installed packages' documentation, a byte-level
BPE trained on it in-process, and files written from it (nothing is downloaded)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from loadwise.testing.text import corpus_lines, long_tailed, train_bpe


@functools.cache
def lines() -> tuple[str, ...]:
    return tuple(corpus_lines())


@functools.cache
def bpe() -> Any:
    """A 1,000-token byte-level BPE trained on the first 2,000 lines (well under a second)."""
    return train_bpe(lines()[:2000], vocab_size=1000)


def texts(count: int = 200, seed: int = 0) -> list[str]:
    """``count`` samples of long-tailed length."""
    return long_tailed(list(lines()), count, seed)


def write_txt(path: Path, samples: list[str]) -> Path:
    path.write_text("\n".join(samples) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, samples: list[str], labels: list[Any]) -> Path:
    rows = [json.dumps({"text": t, "label": y}) for t, y in zip(samples, labels, strict=True)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path
