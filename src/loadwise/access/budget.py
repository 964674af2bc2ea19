"""How much memory a mode would need, and how much this machine (or cgroup) can give."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import psutil

from loadwise.errors import ConfigError
from loadwise.format.fields import FieldSpec
from loadwise.format.spec import Manifest

_CGROUP_V2 = Path("/sys/fs/cgroup")
_CGROUP_V1 = Path("/sys/fs/cgroup/memory")


def check_fraction(name: str, value: float) -> float:
    """A share of available memory must lie in (0, 1]."""
    if not 0 < value <= 1:
        raise ConfigError(
            f"`{name}` is a fraction of available memory in (0, 1]. Found: {value!r}."
        )
    return value


def eager_budget(needed: int, max_memory_usage: float, already_held: int = 0) -> tuple[bool, str]:
    """Whether ``needed`` bytes fit in ``max_memory_usage`` of the available memory, and the
    figures that say so. ``already_held`` is counted as available (data already loaded).

    The one estimate behind eager's guard, ``auto``'s choice and the loader's check.
    """
    check_fraction("max_memory_usage", max_memory_usage)
    available = available_memory() + already_held
    budget = max_memory_usage * available
    figures = (
        f"the data is {needed / 2**20:,.1f} MiB and {max_memory_usage:.0%} of the "
        f"{available / 2**20:,.0f} MiB available (cgroup-aware) is {budget / 2**20:,.0f} MiB"
    )
    return needed <= budget, figures


def stored_bytes(manifest: Manifest, fields: Sequence[FieldSpec]) -> int:
    """Bytes the selected fields occupy when held in RAM as stored (all shards)."""
    total = 0
    for shard in manifest.shards:
        for spec in fields:
            total += sum(span.length for span in shard.buffers[spec.name].values())
    return total


def available_memory() -> int:
    """Bytes available to this process: the machine's, capped by a cgroup limit if any."""
    available = int(psutil.virtual_memory().available)
    cgroup = _cgroup_headroom()
    return available if cgroup is None else min(available, cgroup)


def _cgroup_headroom() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2 or v1), or None if unlimited."""
    for limit_file, usage_file in (
        (_CGROUP_V2 / "memory.max", _CGROUP_V2 / "memory.current"),
        (_CGROUP_V1 / "memory.limit_in_bytes", _CGROUP_V1 / "memory.usage_in_bytes"),
    ):
        try:
            limit_text = limit_file.read_text().strip()
            usage = int(usage_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or int(limit_text) >= 2**60:
            return None
        return max(int(limit_text) - usage, 0)
    return None
