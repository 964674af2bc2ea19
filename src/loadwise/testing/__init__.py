"""Seeded generators of real image data (Omniglot-shaped PNG trees, class folders of JPEG
photos) for tests, the demo and benchmarks; nothing is downloaded."""

from __future__ import annotations

from loadwise.testing.omniglot import OmniglotTree, make_omniglot_tree
from loadwise.testing.photos import PhotoFolder, make_photo_folder

__all__ = ["OmniglotTree", "PhotoFolder", "make_omniglot_tree", "make_photo_folder"]
