"""The encoded image kind: PNG/JPEG/... bytes per sample, decoded a batch at a time on read.

Stored like ``bytes`` (Arrow ``large_binary``); ``mode`` (``L`` or ``RGB``) is what every
image decodes to. A batch is a ``(N, C, H, W)`` uint8 tensor when the images share a size,
else a list of ``(C, H, W)`` tensors. Same-size JPEGs decode into one buffer (channels-last
in memory), the images shared out among the batch's threads; in a DataLoader worker that
buffer is in shared memory, so sending the batch copies nothing. With 0 workers the batch
is decoded on every core without sending pixels between processes, which is why the
tuner then prefers 0.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from loadwise import stages
from loadwise.errors import SourceError
from loadwise.format.codecs import IMAGE_MODES, decode_batch, decode_image
from loadwise.format.crop import centre
from loadwise.format.fields.base import BufferReader, FieldSpec, ReadOptions
from loadwise.format.fields.binary import BytesField, byte_views
from loadwise.gather import recycle
from loadwise.gather.threads import Threads, batch_threads, threads

if TYPE_CHECKING:
    import torch

_UINT8 = np.dtype(np.uint8)


@dataclass(frozen=True)
class EncodedImage:
    """Image file bytes checked to decode, and the mode (``L``/``RGB``) they decode to."""

    data: bytes
    mode: str


@dataclass(frozen=True)
class ImageField(BytesField):
    """Encoded images that decode to ``mode``."""

    mode: str = "RGB"

    kind: ClassVar[str] = "image"

    @classmethod
    def infer(cls, name: str, value: Any) -> FieldSpec | None:
        return cls(name, value.mode) if isinstance(value, EncodedImage) else None

    def _options(self) -> dict[str, Any]:
        return {"mode": self.mode}

    @classmethod
    def from_dict(cls, raw: Any) -> ImageField:
        mode = str(raw["mode"])
        if mode not in IMAGE_MODES:
            raise ValueError(f"image field {raw['name']!r} has unknown mode {mode!r}")
        return cls(str(raw["name"]), mode)

    def check(self, value: Any, item: str, first: str) -> bytes:
        """Encoded images as ``pack`` prepared them, or bytes whose header is an image's."""
        if isinstance(value, EncodedImage):
            return value.data
        data = super().check(value, item, first)
        try:
            Image.open(io.BytesIO(data))  # reads the header only
        except (OSError, UnidentifiedImageError) as exc:
            raise SourceError(
                f"sample `{item}` field `{self.name}` is not an image: {exc}"
            ) from exc
        return data

    def read_batch(
        self, reader: BufferReader, indices: np.ndarray, options: ReadOptions
    ) -> dict[str, Any]:
        raw = byte_views(reader.segments(self, indices), len(indices))  # decoded, not copied
        with stages.span("decode"):  # counted as decode, not gather (``loadwise.stages``)
            decoded = decode_images(self, raw, indices, options.crop)
        del raw
        release = getattr(reader, "release_segments", None)
        if release is not None:  # a memory map: the encoded bytes are not needed mapped
            release(self)
        return {self.name: decoded}


def decode_images(
    spec: ImageField,
    raw: Sequence[bytes | memoryview],
    idx: np.ndarray,
    crop: tuple[int, int] | None = None,
) -> Any:
    """``(N, C, H, W)`` uint8 tensor when the images share a size (after the centre
    ``crop``, if asked), else a list of tensors."""
    import torch

    names = [f"sample {i} field `{spec.name}`" for i in idx.tolist()]
    pool = threads(batch_threads())
    buffers: list[torch.Tensor] = []

    def allocate(shape: tuple[int, ...]) -> np.ndarray:
        buffers.append(batch_buffer(shape))
        return buffers[-1].numpy()

    together = decode_batch(raw, mode=spec.mode, names=names, allocate=allocate, threads=pool,
                            crop=crop)  # fmt: skip
    if together is not None:
        return buffers[0].permute(0, 3, 1, 2)  # channels-last in memory
    images = _each(raw, names, spec.mode, pool, crop)
    if images and all(im.shape == images[0].shape for im in images):
        return torch.from_numpy(np.stack(images))
    return [torch.from_numpy(np.ascontiguousarray(im)) for im in images]


def _each(
    raw: Sequence[bytes | memoryview],
    names: list[str],
    mode: str | None,
    pool: Threads | None,
    crop: tuple[int, int] | None,
) -> list[np.ndarray]:
    def one(j: int) -> np.ndarray:
        return centre(decode_image(raw[j], mode=mode, name=names[j]), crop, names[j])

    if pool is None:
        return [one(j) for j in range(len(raw))]
    return pool.map(one, len(raw))


def batch_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """A uint8 tensor for a decoded batch; in a DataLoader worker it lives in shared memory
    (the worker's batch slot, ``loading/transport.py``, else torch's), so sending the batch
    to the main process does not copy it (as torch's collate does).

    Elsewhere it is a numpy buffer, reused once the batch before is gone (``recycle``):
    batch after batch the process stays at one size, where ``torch.empty`` buffers kept it
    36-48 MB larger and wandering (measured)."""
    import torch
    from torch.utils.data import get_worker_info

    if get_worker_info() is None or recycle.has_destination():  # the latter: a worker's slot
        return torch.from_numpy(recycle.empty(shape, _UINT8))
    return torch.empty(shape, dtype=torch.uint8).share_memory_()
