"""Decoding a batch of an encoded image field: one buffer for the batch, images shared out
among threads.

Threads per batch: ``parallel.batch_threads``. With 0 workers the batch is decoded on every
core without sending pixels between processes, which is why the tuner then prefers 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

from loadwise.access import recycle
from loadwise.access.parallel import batch_threads
from loadwise.format.codecs import decode_batch, decode_image
from loadwise.format.spec import FieldSpec
from loadwise.format.threads import Threads, threads

_UINT8 = np.dtype(np.uint8)


def decode_images(spec: FieldSpec, raw: list[bytes], idx: np.ndarray) -> Any:
    """``(N, C, H, W)`` uint8 tensor when the images share a size, else a list of tensors."""
    names = [f"sample {i} field `{spec.name}`" for i in idx.tolist()]
    pool = threads(batch_threads())
    buffers: list[torch.Tensor] = []

    def allocate(shape: tuple[int, ...]) -> np.ndarray:
        buffers.append(batch_buffer(shape))
        return buffers[-1].numpy()

    together = decode_batch(raw, mode=spec.image_mode, names=names, allocate=allocate, threads=pool)
    if together is not None:
        return buffers[0].permute(0, 3, 1, 2)  # channels-last in memory
    images = _each(raw, names, spec.image_mode, pool)
    if images and all(im.shape == images[0].shape for im in images):
        return torch.from_numpy(np.stack(images))
    return [torch.from_numpy(im) for im in images]


def _each(
    raw: list[bytes], names: list[str], mode: str | None, pool: Threads | None
) -> list[np.ndarray]:
    def one(j: int) -> np.ndarray:
        return decode_image(raw[j], mode=mode, name=names[j])

    if pool is None:
        return [one(j) for j in range(len(raw))]
    return pool.map(one, len(raw))


def batch_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """A uint8 tensor for a decoded batch; in a DataLoader worker it lives in shared memory,
    so sending the batch to the main process does not copy it (as torch's collate does).

    Elsewhere it is a numpy buffer, reused once the batch before is gone (``recycle``):
    batch after batch the process stays at one size, where ``torch.empty`` buffers kept it
    36-48 MB larger and wandering (measured)."""
    if get_worker_info() is None:
        return torch.from_numpy(recycle.empty(shape, _UINT8))
    return torch.empty(shape, dtype=torch.uint8).share_memory_()
