"""``PadText``: ids padded to the longest or to ``max_length``, mask, lengths, labels."""

from __future__ import annotations

import pytest
import torch

from loadwise.errors import ConfigError
from loadwise.transforms import PadText


def _batch() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[5, 6, 7, 0], [8, 0, 0, 0], [1, 2, 3, 4]], dtype=torch.int32)
    return {
        "input_ids": ids,
        "input_ids_lengths": torch.tensor([3, 1, 4]),
        "label": torch.tensor([1, 0, 1]),
    }


def test_padded_to_the_longest_with_mask_lengths_and_labels() -> None:
    out = PadText()(_batch())
    assert out["input_ids"].dtype == torch.int64 and out["input_ids"].shape == (3, 4)
    assert out["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]]
    assert out["lengths"].tolist() == [3, 1, 4] and out["labels"].tolist() == [1, 0, 1]
    assert "label" not in out and "input_ids_lengths" not in out


def test_cut_and_padded_to_max_length_with_a_pad_id() -> None:
    out = PadText(max_length=3, pad_to="max_length", pad_id=-100)(_batch())
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, -100, -100], [1, 2, 3]]
    assert out["lengths"].tolist() == [3, 1, 3]
    wide = PadText(max_length=6, pad_to="max_length")(_batch())
    assert wide["input_ids"].shape == (3, 6) and wide["attention_mask"][2].tolist() == [
        1,
        1,
        1,
        1,
        0,
        0,
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_length": 0}, "`max_length` must be"),
        ({"pad_to": "max_length"}, "needs `max_length`"),
        ({"pad_to": "x"}, "`pad_to`"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PadText(**options)  # type: ignore[arg-type]


def test_the_device_path_pads_alike() -> None:
    """The torch path (used on a GPU) gives what the numpy path gives on the CPU."""
    from loadwise.transforms.text import _padded_numpy, _padded_torch

    batch = _batch()
    for width, pad_id in ((4, 0), (6, -1)):
        args = (batch["input_ids"], batch["input_ids_lengths"], width, pad_id, torch.int64)
        for ours, theirs in zip(_padded_numpy(*args), _padded_torch(*args), strict=True):
            assert torch.equal(ours, theirs)
