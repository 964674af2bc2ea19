"""Batch transforms: ``batch dict -> batch dict`` callables run on the gathered batch.

Never per sample: one call per batch, on the device the batch lives on. Pass one to
``loadwise.loader(..., batch_transform=...)`` (or ``DataLoaderConfig.batch_transform``).
"""

from loadwise.transforms.base import BatchTransform, Compose
from loadwise.transforms.crop import CropSpec, RandomResizedCrop
from loadwise.transforms.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize
from loadwise.transforms.resize import Resize, resize_images
from loadwise.transforms.text import PadText

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BatchTransform",
    "Compose",
    "CropSpec",
    "Normalize",
    "PadText",
    "RandomResizedCrop",
    "Resize",
    "resize_images",
]
