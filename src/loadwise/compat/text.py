"""``TextDataset``: the documents' text dataset, tokenized once into a packed dataset.

The texts (a ``.txt`` file, ``.jsonl``, a folder of ``<class>/<file>.txt``) are tokenized once
at pack time (``sources/text.py``) into the cache and opened in ``loading_mode``; an item or
a whole batch is then one gather of token ids plus ``PadText`` (cut at ``max_length``,
padded, attention mask). ``report`` counts what was cut, left out or repaired.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from torch.utils.data import Dataset

from loadwise.access.auto import LoadingMode, open_dataset
from loadwise.access.lengths import sample_lengths
from loadwise.compat.cache import packed_once
from loadwise.sources.text import TextSource, check_max_length
from loadwise.transforms.text import PadText

log = logging.getLogger("loadwise")


@dataclass(frozen=True)
class TextReport:
    """What packing the texts kept and changed: samples, their tokens (after the cut), how
    many were cut at ``max_length``, empty lines left out, invalid UTF-8 lines repaired."""

    samples: int
    tokens: int
    truncated: int
    empty_lines: int
    invalid_utf8_lines: int


class TextDataset(Dataset):
    """Items ``{"input_ids", "attention_mask"[, "labels"]}`` of token ids (int64), padded to
    ``max_length`` (``pad_to="longest"``: each to its own length, batches to their longest).

    ``tokenizer``: a callable ``str -> list[int]``, a ``tokenizers.Tokenizer``, a
    ``transformers`` tokenizer, or None for one id per Unicode code point. ``get_batch``
    (what ``loadwise.loader`` calls) gathers a whole batch at once.
    """

    def __init__(
        self,
        data_path: str | Path | Sequence[str],
        tokenizer: Any = None,
        max_length: int = 512,
        loading_mode: str | LoadingMode = "auto",
        *,
        pad_to: str = "max_length",
        text_key: str = "text",
        label_key: str = "label",
        errors: str = "replace",
        max_memory_usage: float | None = None,
    ) -> None:
        self.max_length = check_max_length(max_length)
        source = TextSource(data_path, tokenizer, max_length=max_length, text_key=text_key,
                            label_key=label_key, errors=errors)  # fmt: skip
        self.path = packed_once(source, "text", _entry_name(source), progress=False)
        names = [f.name for f in _manifest_fields(self.path)]
        fields = ["input_ids", *(["label"] if "label" in names else [])]
        self.packed = open_dataset(self.path, loading_mode, fields=fields,
                                   max_memory_usage=max_memory_usage)  # fmt: skip
        self.loading_mode = LoadingMode(self.packed.mode)
        self.classes = list(source.categories.get("label", ()))
        self.pad = PadText(max_length=max_length, pad_to=pad_to)
        self.report = _report(self.path, max_length)
        log.info("loadwise: TextDataset `%s`: %s", source.describe()["root"], self.report)

    def __len__(self) -> int:
        return len(self.packed)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """Items of one gather; with ``pad_to="longest"`` each cut to its own length."""
        batch = self.get_batch(indices)
        items = []
        for j in range(len(batch["lengths"])):
            keep = (
                slice(None) if self.pad.pad_to == "max_length" else slice(int(batch["lengths"][j]))
            )
            item = {
                "input_ids": batch["input_ids"][j, keep],
                "attention_mask": batch["attention_mask"][j, keep],
            }
            if "labels" in batch:
                item["labels"] = int(batch["labels"][j])
            items.append(item)
        return items

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """``{input_ids, attention_mask, lengths[, labels], index}``: one gather, padded once."""
        return self.pad(self.packed.get_batch(indices))

    def sample_lengths(self) -> np.ndarray:
        """Tokens of every sample (after the cut), for ``bucket_by_length``."""
        lengths = sample_lengths(self.packed)
        return lengths if self.max_length is None else np.minimum(lengths, self.max_length)

    def close(self) -> None:
        self.packed.close()


def _entry_name(source: TextSource) -> str:
    """The cache entry's name: where the texts are and how they are tokenized (a list of
    strings is named by its content), so no two datasets replace each other's entry."""
    described = source.describe()
    where = str(described["root"])
    if where.startswith("<"):
        where += described["fingerprint"]
    options = (where, described["tokenizer"], described["max_length"], source.errors,
               source.text_key, source.label_key)  # fmt: skip
    stem = Path(where).name if not where.startswith("<") else "strings"
    return f"{stem}-{xxhash.xxh3_64_hexdigest(repr(options).encode())}"


def _manifest_fields(path: Path) -> tuple[Any, ...]:
    from loadwise.format.reader import read_manifest

    return read_manifest(path).fields


def _report(path: Path, max_length: int | None) -> TextReport:
    """The counts, from the packed data (``num_tokens``) and the manifest (the source's)."""
    with open_dataset(path, "lazy", fields=["num_tokens"]) as packed:
        counts = packed.get_batch(np.arange(len(packed)))["num_tokens"].numpy().astype(np.int64)
        described = packed.manifest.source
    kept = counts if max_length is None else np.minimum(counts, max_length)
    return TextReport(
        samples=len(counts),
        tokens=int(kept.sum()),
        truncated=int((counts > max_length).sum()) if max_length is not None else 0,
        empty_lines=int(described.get("empty_lines", 0)),
        invalid_utf8_lines=int(described.get("invalid_utf8_lines", 0)),
    )
