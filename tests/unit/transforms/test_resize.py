"""Batch resizing: one interpolate call per batch, the same pixels as one image at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from loadwise.errors import ConfigError
from loadwise.transforms import Compose, Normalize, Resize, resize_images
from loadwise.transforms.channels_last import normalize_channels_last
from loadwise.transforms.resize import resize_as_float


def _batch(size: int = 40, n: int = 5, channels: int = 3) -> torch.Tensor:
    rng = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=rng)


@pytest.mark.parametrize("side", [24, 40, 72])
def test_uint8_batch_matches_pil_one_image_at_a_time(side: int) -> None:
    images = _batch()
    out = resize_images(images, side)
    assert out.dtype == torch.uint8 and out.shape == (5, 3, side, side)
    assert out.is_contiguous()  # the input's memory format is kept
    for row in range(len(images)):
        pil = Image.fromarray(images[row].permute(1, 2, 0).numpy()).resize((side, side), 2)
        diff = np.abs(np.asarray(pil, dtype=int) - out[row].permute(1, 2, 0).numpy().astype(int))
        assert diff.max() <= 2, f"row {row}: {diff.max()} levels from PIL's bilinear"
        torch.testing.assert_close(out[row], resize_images(images[row], side))


def test_float_and_uint8_paths_agree_and_keep_channels_last() -> None:
    images = _batch().contiguous(memory_format=torch.channels_last)
    small = resize_images(images, (20, 30))
    assert small.shape == (5, 3, 20, 30) and small.is_contiguous(memory_format=torch.channels_last)
    as_float = resize_images(images.float(), (20, 30))
    assert as_float.dtype == torch.float32
    assert (as_float - small.float()).abs().max() <= 1.0


def test_the_uint8_path_off_the_cpu_rounds_a_float_resize_back() -> None:
    """CUDA has no uint8 bilinear kernel: that branch resizes as float (run here on the CPU)."""
    images = _batch()
    for side in (24, 72):
        via_float = resize_as_float(images, side, side, shrinks=side < 40)
        assert via_float.dtype == torch.uint8
        diff = (via_float.int() - resize_images(images, side).int()).abs()
        assert diff.max() <= 1


def test_same_size_is_returned_as_is_and_resize_takes_the_batch_scale() -> None:
    images = _batch()
    assert resize_images(images, 40) is images
    batch = {"image": images, "label": torch.arange(5), "scale": 32}
    out = Compose(Resize(), Normalize())(batch)
    assert out["image"].shape == (5, 3, 32, 32) and out["image"].dtype == torch.float32
    assert out["label"] is batch["label"]


@pytest.mark.parametrize(
    ("size", "message"), [(0, "positive ints"), ((3, 4, 5), "positive ints"), (2.5, "positive")]
)
def test_bad_sizes_are_refused(size: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resize_images(_batch(), size)  # type: ignore[arg-type]


def test_bad_batches_are_refused_with_what_was_found() -> None:
    with pytest.raises(ConfigError, match="no size and the batch carries no `scale`"):
        Resize()({"image": _batch()})
    with pytest.raises(ConfigError, match="no field `image`"):
        Resize(8)({"pixels": _batch()})
    with pytest.raises(ConfigError, match=r"tensor \[B, C, H, W\]"):
        resize_images(torch.zeros(4, 4), 2)
    with pytest.raises(ConfigError, match="uint8 or floating-point"):
        resize_images(torch.zeros(1, 1, 4, 4, dtype=torch.int32), 2)


@pytest.mark.parametrize("shape", [(5, 3, 48, 40), (2, 1, 32, 32), (3, 3, 7, 5)])
def test_channels_last_normalisation_equals_normalize(shape: tuple[int, int, int, int]) -> None:
    """Rows of whole pixels where the pixel count allows (7 x 5 x 3 does not: Normalize)."""
    images = torch.randint(0, 256, shape, dtype=torch.uint8).contiguous(
        memory_format=torch.channels_last
    )
    normalize = Normalize() if shape[1] == 3 else Normalize((0.5,), (0.25,))
    out = normalize_channels_last(images, normalize)
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, normalize.images(images.contiguous()), rtol=0, atol=0)
    nchw = normalize_channels_last(images.contiguous(), normalize)  # not channels-last: as is
    torch.testing.assert_close(nchw, normalize.images(images.contiguous()), rtol=0, atol=0)
