"""Shared fixtures: real data made in temporary folders (nothing is downloaded or committed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.data import array_columns, write_class_tree

import loadwise
from loadwise.testing import make_omniglot_tree

# The contract helpers (tests/contracts/*.py) are not test files: have pytest explain their
# asserts too. Registered before any test module imports them.
pytest.register_assert_rewrite("tests.contracts")


@pytest.fixture(scope="session")
def omniglot_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Omniglot-shaped tree: 3 alphabets x 4 characters x 5 drawings of real glyphs."""
    root = tmp_path_factory.mktemp("omniglot") / "images_background"
    make_omniglot_tree(root, alphabets=3, characters=4, drawings=5, seed=1)
    return root


@pytest.fixture(scope="session")
def omniglot_packed(omniglot_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("packed") / "omniglot.loadwise"
    loadwise.pack(omniglot_tree, dest, shard_bytes=40_000, progress=False)
    return dest


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    return write_class_tree(tmp_path / "photos")


@pytest.fixture(scope="session")
def arrays_packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 samples in about 8 shards, so batches cross shard boundaries."""
    dest = tmp_path_factory.mktemp("arrays") / "arrays.loadwise"
    loadwise.pack(array_columns(), dest, shard_bytes=1_500, progress=False)
    return dest
