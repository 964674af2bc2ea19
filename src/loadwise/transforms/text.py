"""``PadText``: a batch of token ids as language models take it, made once per batch.

The ragged ``input_ids`` field comes out of ``get_batch`` padded to the batch's longest
sample (zeros) with ``input_ids_lengths``; this transform cuts at ``max_length``, pads to the
longest (or to ``max_length`` with ``pad_to="max_length"``) with ``pad_id``, and adds the
``attention_mask`` (1 for tokens, 0 for padding), ``lengths`` and ``labels``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from loadwise.errors import ConfigError
from loadwise.format.fields.ragged import LENGTHS_SUFFIX

PAD_TO = ("longest", "max_length")


class PadText:
    """``{input_ids, input_ids_lengths, label}`` -> ``{input_ids, attention_mask, lengths,
    labels}`` (other entries kept), ids and mask as ``dtype`` (int64: what embeddings take)."""

    def __init__(
        self,
        field: str = "input_ids",
        *,
        max_length: int | None = None,
        pad_to: str = "longest",
        pad_id: int = 0,
        label: str = "label",
        dtype: torch.dtype = torch.int64,
    ) -> None:
        if pad_to not in PAD_TO:
            raise ConfigError(f"`pad_to` must be one of {', '.join(PAD_TO)}. Found: {pad_to!r}.")
        if max_length is not None and max_length <= 0:
            raise ConfigError(f"`max_length` must be an integer >= 1. Found: {max_length!r}.")
        if pad_to == "max_length" and max_length is None:
            raise ConfigError("`pad_to='max_length'` needs `max_length`.")
        self.field, self.max_length, self.pad_to = field, max_length, pad_to
        self.pad_id, self.label, self.dtype = pad_id, label, dtype

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = dict(batch)
        ids, lengths = out.pop(self.field), out.pop(self.field + LENGTHS_SUFFIX)
        if self.max_length is not None:
            ids, lengths = ids[:, : self.max_length], lengths.clamp(max=self.max_length)
        width = (
            int(ids.shape[1])
            if self.max_length is None or self.pad_to == "longest"
            else self.max_length
        )
        pad = _padded_numpy if ids.device.type == "cpu" else _padded_torch
        out["input_ids"], out["attention_mask"] = pad(ids, lengths, width, self.pad_id, self.dtype)
        out["lengths"] = lengths
        if self.label in out:
            out["labels"] = out.pop(self.label)
        return out

    def __repr__(self) -> str:
        return f"PadText({self.field!r}, max_length={self.max_length}, pad_to={self.pad_to!r})"


def _padded_torch(
    ids: torch.Tensor, lengths: torch.Tensor, width: int, pad_id: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """On the batch's device (a GPU, after the loader moved it there)."""
    mask = torch.arange(width, device=ids.device) < lengths[:, None]
    padded = torch.full((len(ids), width), pad_id, dtype=dtype, device=ids.device)
    padded[:, : ids.shape[1]] = ids
    if pad_id != 0:
        padded[~mask] = pad_id  # the gather padded with zeros
    return padded, mask.to(dtype)


def _padded_numpy(
    ids: torch.Tensor, lengths: torch.Tensor, width: int, pad_id: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """On the CPU with numpy, on this thread: torch's ops on a batch this size run on its
    two OpenMP threads, whose barrier stalls whenever the other core is busy (175 -> ~40 us
    a batch of 64 here)."""
    target = torch.empty(0, dtype=dtype).numpy().dtype
    mask = np.arange(width) < lengths.numpy()[:, None]
    padded = np.full((len(ids), width), pad_id, dtype=target)
    padded[:, : ids.shape[1]] = ids.numpy()
    if pad_id != 0:
        padded[~mask] = pad_id
    return torch.from_numpy(padded), torch.from_numpy(mask.astype(target))
