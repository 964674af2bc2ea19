"""Real text without a download: the documentation shipped inside installed packages, and a
byte-level BPE tokenizer trained on it in-process (``tokenizers``, well under a second).

``corpus_lines`` reads the long descriptions (README text) of the installed distributions'
metadata, sorted by name, so the same environment gives the same lines. ``long_tailed``
joins consecutive lines into samples whose lengths follow a long-tailed (log-normal) law,
the shape real corpora have, seeded.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

import numpy as np


def corpus_lines(min_chars: int = 20) -> list[str]:
    """Non-empty prose lines from installed packages' descriptions (deterministic per env)."""
    lines: list[str] = []
    dists = sorted(importlib.metadata.distributions(), key=lambda d: d.metadata["Name"] or "")
    for dist in dists:
        text = dist.metadata.get_payload() or dist.metadata.get("Description") or ""  # type: ignore[attr-defined]
        for line in str(text).splitlines():
            line = line.strip()
            if len(line) >= min_chars and not line.startswith(("```", "|", "..", "[!", "<")):
                lines.append(line)
    return lines


def long_tailed(
    lines: list[str], count: int, seed: int = 0, median_lines: float = 1.5
) -> list[str]:
    """``count`` samples, each some consecutive ``lines`` joined; how many is log-normal
    (median ``median_lines``, a long tail of samples tens of times longer)."""
    rng = np.random.default_rng(seed)
    sizes = np.maximum(1, np.rint(rng.lognormal(np.log(median_lines), 1.1, count))).astype(int)
    starts = rng.integers(0, len(lines), count)
    return [
        " ".join(lines[(s + k) % len(lines)] for k in range(n))
        for s, n in zip(starts, sizes, strict=True)
    ]


def train_bpe(texts: Iterable[str], vocab_size: int = 2000) -> object:
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on ``texts`` (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<pad>"], show_progress=False,
    )  # fmt: skip
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer
