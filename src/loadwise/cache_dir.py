"""Where loadwise keeps what it makes once: packed folders, tune results (``$LOADWISE_CACHE``).

One definition for every user of the cache, so the variable and its default cannot drift.
Delete the folder at any time to reclaim disk; everything in it is rebuilt on demand.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The environment variable naming the cache folder.
CACHE_ENV = "LOADWISE_CACHE"


def cache_dir(*parts: str) -> Path:
    """``$LOADWISE_CACHE`` (default ``~/.cache/loadwise``), joined with ``parts``."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured or Path.home() / ".cache" / "loadwise").expanduser()
    return root.joinpath(*parts)
