"""A media server on 127.0.0.1 for the source tests (started and stopped by each test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.media import jpeg

from loadwise.testing.server import MediaServer


@pytest.fixture
def server() -> Iterator[MediaServer]:
    """Serves ``0.jpg`` ... ``39.jpg`` (``tests.media.jpeg(i)``) and the broken endpoints."""
    with MediaServer({f"{i}.jpg": jpeg(i) for i in range(40)}) as running:
        yield running
