"""Normalize: uint8 batches to (x/255 - mean)/std per channel, on the batch's device."""

from __future__ import annotations

import pickle

import pytest
import torch

from loadwise.errors import ConfigError
from loadwise.transforms import IMAGENET_MEAN, IMAGENET_STD, Compose, Normalize


def _images(channels: int = 3) -> torch.Tensor:
    return torch.randint(
        0, 256, (4, channels, 7, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def _reference(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    return (x.double() / 255 - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


def test_imagenet_normalisation_of_the_image_field_only() -> None:
    batch = {"image": _images(), "label": torch.arange(4)}
    out = Normalize()(batch)
    assert out["image"].dtype == torch.float32 and out["image"].shape == (4, 3, 7, 5)
    expected = _reference(batch["image"], IMAGENET_MEAN, IMAGENET_STD).float()
    torch.testing.assert_close(out["image"], expected, rtol=1e-5, atol=1e-5)
    assert out["label"] is batch["label"] and batch["image"].dtype == torch.uint8  # input kept


def test_channels_last_stays_channels_last_and_one_value_serves_all_channels() -> None:
    images = _images().contiguous(memory_format=torch.channels_last)
    out = Normalize((0.5,), (0.25,), fields=("x",))({"x": images})["x"]
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, _reference(images, (0.5,), (0.25,)).float())


def test_wrong_inputs_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="uint8 images"):
        Normalize()({"image": _images().float()})
    with pytest.raises(ConfigError, match=r"no field `image`.*\['pixels'\].*`fields=`"):
        Normalize()({"pixels": _images()})
    with pytest.raises(ConfigError, match="3 mean/std values but the images have 1 channels"):
        Normalize()({"image": _images(1)})
    with pytest.raises(ConfigError, match="one value per channel"):
        Normalize((0.5, 0.5), (0.2,))
    with pytest.raises(ConfigError, match="`std` must be positive"):
        Normalize((0.5,), (0.0,))


def test_compose_runs_in_order_and_transforms_pickle() -> None:
    def plus_one(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**batch, "image": batch["image"] + 1}

    batch = {"image": _images()}
    composed = Compose(Normalize((0.0,), (1.0,)), plus_one)
    out = composed(batch)["image"]
    torch.testing.assert_close(out, batch["image"].float() / 255 + 1)
    normalize = Normalize()
    normalize(batch)  # caches its factors, which stay out of the pickle
    again = pickle.loads(pickle.dumps(normalize))
    torch.testing.assert_close(again(batch)["image"], normalize(batch)["image"])
