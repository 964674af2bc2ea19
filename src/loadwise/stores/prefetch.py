"""Read-ahead for a remote store: while the sampler hands out an epoch's batches (in the main
process, ahead of the DataLoader's workers), the shards of the next batches are fetched into
the shared cache, a bounded number of shards ahead, so the workers find them there.

Read-ahead never waits for room and never goes past the cache limit (``ShardCache.fill``
with ``ahead=True``): a shard it could not fit is fetched by the reader that needs it.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from loadwise.stores.remote import RemoteStore

log = logging.getLogger(__name__)


def read_ahead(
    store: RemoteStore, starts: np.ndarray, names: Sequence[str], batches: list[np.ndarray]
) -> Iterator[np.ndarray]:
    """``batches`` one by one; before each, fetches are started for the shards first used
    by the following batches until ``store.fetch.prefetch`` shards are pending."""
    ahead = store.fetch.prefetch
    if ahead == 0:
        yield from batches
        return
    # read-ahead evicts the least recently used copies: deeper than a quarter of what the
    # cache holds, it evicted copies the epoch still needed (a shard fetched twice)
    largest = max((s.num_bytes for s in store.shards.values()), default=1) or 1
    ahead = min(ahead, max(store.cache_limit // (4 * largest), 1))
    pool = _pool(store, ahead)
    seen: set[int] = set()
    pending: deque[int] = deque()  # first-use batch of each shard fetched ahead, in order
    uses: dict[int, list[int]] = {}  # shards of each batch scanned and not yet handed out
    started: list[str] = []  # shards fetched ahead while the window opens
    window, scanned = 1, 0
    for i, batch in enumerate(batches):
        while pending and pending[0] <= i:
            pending.popleft()
        if window < ahead:  # doubled per shard arrived: the first ones come unshared
            window = min(ahead, 1 << sum(map(store.has_copy, started)))
        while len(pending) < window and scanned < len(batches):
            uses[scanned] = shards_of(batches[scanned], starts)
            for number in uses[scanned]:
                if number not in seen:
                    seen.add(number)
                    pending.append(scanned)
                    if window < ahead:
                        started.append(names[number])
                    first = {names[n] for j in range(i, scanned) for n in uses.get(j, ())}
                    if not store.start_fetch(names[number], first):
                        pool.submit(_fetch, store, names[number], first)
            scanned += 1
        uses.pop(i, None)
        yield batch


def shards_of(indices: np.ndarray, starts: np.ndarray) -> list[int]:
    """The shards holding ``indices``, in the order they are first met."""
    owners = np.searchsorted(starts, indices, side="right") - 1
    unique, first = np.unique(owners, return_index=True)
    return unique[np.argsort(first)].tolist()


def _fetch(store: RemoteStore, name: str, needed_first: set[str]) -> None:
    try:
        store.fetch_ahead(name, needed_first)
    except Exception as exc:  # noqa: BLE001  # the reader that needs it fetches it and raises
        log.debug("read-ahead of %s in %s failed: %s", name, store.location, exc)


def _pool(store: RemoteStore, ahead: int) -> concurrent.futures.ThreadPoolExecutor:
    local = store._here()
    if local.ahead is None:
        local.ahead = concurrent.futures.ThreadPoolExecutor(
            ahead, thread_name_prefix="loadwise-ahead"
        )
    return local.ahead
