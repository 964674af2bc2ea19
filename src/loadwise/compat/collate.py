"""``CustomCollateFn``: the documents' collate functions for a plain ``DataLoader``.

Loaders over loadwise datasets need none (``get_batch`` returns the collated batch); these
serve ``DataLoader(dataset, collate_fn=CustomCollateFn.text_collate)`` and the like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence


def _tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)


class CustomCollateFn:
    """Collate functions for images, token sequences and variable-length sequences."""

    @staticmethod
    def image_collate(batch: Sequence[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``[(image, label), ...]`` -> ``(images [B, ...], labels [B])``."""
        images, labels = zip(*batch, strict=True)
        return torch.stack([_tensor(i) for i in images]), torch.as_tensor(labels)

    @staticmethod
    def text_collate(
        batch: Sequence[Mapping[str, Any]], pad_token_id: int = 0
    ) -> dict[str, torch.Tensor]:
        """``[{"input_ids", ["labels" | "label"]}, ...]`` -> ``input_ids`` padded to the
        longest with ``pad_token_id``, ``attention_mask``, ``lengths`` and ``labels``."""
        sequences = [_tensor(item["input_ids"]).long() for item in batch]
        lengths = torch.tensor([len(s) for s in sequences])
        ids = pad_sequence(sequences, batch_first=True, padding_value=pad_token_id)
        mask = (torch.arange(ids.shape[1]) < lengths[:, None]).long()
        out = {"input_ids": ids, "attention_mask": mask, "lengths": lengths}
        key = next((k for k in ("labels", "label") if k in batch[0]), None)
        if key is not None:
            out["labels"] = torch.as_tensor([item[key] for item in batch])
        return out

    @staticmethod
    def variable_length_collate(
        batch: Sequence[Any], padding_value: float = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``[(sequence, label), ...]`` (or bare sequences) -> ``(padded [B, longest, ...],
        lengths [B], labels [B] or None)``."""
        pairs = [item if isinstance(item, tuple | list) else (item, None) for item in batch]
        sequences = [_tensor(s) for s, _ in pairs]
        lengths = torch.tensor([len(s) for s in sequences])
        padded = pad_sequence(sequences, batch_first=True, padding_value=padding_value)
        labels = [label for _, label in pairs]
        return padded, lengths, None if labels[0] is None else torch.as_tensor(labels)
