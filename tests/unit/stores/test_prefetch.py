"""Read-ahead's window: the first shard is fetched alone (it arrives sooner than when it
shares the connections with seven others), then the window doubles per shard arrived."""

from __future__ import annotations

import types

import numpy as np

from loadwise.stores.prefetch import read_ahead


class _Store:
    """What ``read_ahead`` asks of a remote store, recording the fetches it starts."""

    def __init__(self, shards: int, prefetch: int) -> None:
        self.fetch = types.SimpleNamespace(prefetch=prefetch)
        self.shards = {f"s{n}": types.SimpleNamespace(num_bytes=100) for n in range(shards)}
        self.cache_limit = 100 * shards * 4
        self.started: list[str] = []
        self.arrived: set[str] = set()
        self._local = types.SimpleNamespace(ahead=None)

    def start_fetch(self, name: str, needed_first: set[str]) -> bool:
        self.started.append(name)
        return True  # taken (as by the helper): nothing runs on the thread pool

    def has_copy(self, name: str) -> bool:
        return name in self.arrived

    def _here(self) -> types.SimpleNamespace:
        return self._local


def test_the_window_opens_as_shards_arrive() -> None:
    store = _Store(shards=12, prefetch=8)
    starts = np.arange(0, 130, 10)  # shard n holds samples 10n..10n+9
    batches = [np.arange(10 * n, 10 * n + 10) for n in range(12)]  # one shard per batch
    handed = read_ahead(store, starts, list(store.shards), batches)  # type: ignore[arg-type]
    next(handed)
    assert store.started == ["s0"]  # alone: nothing has arrived
    store.arrived.add("s0")  # batch 0 was read
    next(handed)
    assert store.started == ["s0", "s1", "s2"]  # one arrived: two ahead
    next(handed)
    assert store.started == [f"s{n}" for n in range(5)]
    store.arrived.update({"s1", "s2"})
    next(handed)
    assert store.started == [f"s{n}" for n in range(12)]  # three arrived: the whole depth
    assert [b.tolist() for b in handed] == [b.tolist() for b in batches[4:]]
