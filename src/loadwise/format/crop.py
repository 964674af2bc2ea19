"""The centre crop applied while images decode (``open(..., crop=(h, w))``): the batch
buffer holds only the crop, so a DataLoader worker's batch slots and a cached mode's arena
are sized for what training uses, not for the stored images.

A crop copies its window out of a per-thread scratch image the full size of the stored
one (reused batch after batch), so no full-size batch is ever allocated.
"""

from __future__ import annotations

import threading

import numpy as np

from loadwise.errors import ConfigError, SourceError

_SCRATCH = threading.local()


def check_crop(crop: object) -> tuple[int, int] | None:
    """``crop`` as ``(height, width)`` of positive ints, or None; ``ConfigError`` else."""
    if crop is None:
        return None
    if isinstance(crop, int) and not isinstance(crop, bool):
        crop = (crop, crop)
    if (
        not isinstance(crop, (tuple, list))
        or len(crop) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in crop)
    ):
        raise ConfigError(
            f"`crop` must be (height, width) in pixels, both >= 1, or one int for a square. "
            f"Found: {crop!r}."
        )
    return int(crop[0]), int(crop[1])


def window(height: int, width: int, crop: tuple[int, int], name: str) -> tuple[int, int]:
    """Top and left of the centre ``crop`` of a ``height`` x ``width`` image; an error
    naming the image if it is smaller than the crop."""
    if crop[0] > height or crop[1] > width:
        raise SourceError(
            f"cannot crop image `{name}` to {crop[0]}x{crop[1]}: it is {height}x{width}. "
            f"Open the dataset with a smaller `crop`, or pack it with `image_size` at least "
            f"the crop."
        )
    return (height - crop[0]) // 2, (width - crop[1]) // 2


def scratch(shape: tuple[int, int, int]) -> np.ndarray:
    """This thread's ``(H, W, C)`` uint8 buffer to decode a full image into before its
    window is copied out (kept for the next image of that shape)."""
    held = getattr(_SCRATCH, "buffer", None)
    if held is None or held.shape != shape:
        held = _SCRATCH.buffer = np.empty(shape, np.uint8)
    return held


def centre(image: np.ndarray, crop: tuple[int, int] | None, name: str) -> np.ndarray:
    """The centre ``crop`` of a ``(C, H, W)`` image (a view), or the image itself."""
    if crop is None:
        return image
    top, left = window(image.shape[1], image.shape[2], crop, name)
    return image[:, top : top + crop[0], left : left + crop[1]]


class Into:
    """Where a batch's same-size images decode: straight into their row of the batch, or,
    with a ``crop``, into a thread's full-size scratch whose centre window is then copied
    to the row."""

    def __init__(
        self, height: int, width: int, channels: int, crop: tuple[int, int] | None, name: str
    ) -> None:
        self.full, self.crop = (height, width, channels), crop
        self.size = (height, width) if crop is None else crop
        self.top, self.left = (0, 0) if crop is None else window(height, width, crop, name)

    def target(self, row: np.ndarray) -> np.ndarray:
        return row if self.crop is None else scratch(self.full)

    def done(self, target: np.ndarray, row: np.ndarray) -> None:
        if self.crop is not None:
            row[...] = target[self.top : self.top + self.size[0],
                              self.left : self.left + self.size[1]]  # fmt: skip
