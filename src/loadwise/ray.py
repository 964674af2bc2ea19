"""``loadwise.ray.read(path)``: a packed dataset as a ``ray.data.Dataset``, for users who
preprocess with Ray.

Shards are Arrow IPC files, which Ray Data holds natively: one read task per shard opens it
through the dataset's store (a folder, or object storage with its cache), checks it against
the manifest's checksum, and gives its record batch as an Arrow table, columns as stored
(fixed fields as fixed-size lists of their element type, variable ones as lists, strings or
binary), plus ``index``: each row's sample index in the packed dataset, as ``loadwise.open``
numbers it. Ray hands blocks on as they finish, so rows come in shard order only when
``DataContext.get_current().execution_options.preserve_order`` is set; ``index`` says where
each row belongs either way. Nothing is read until the dataset is consumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from loadwise.errors import MissingExtraError
from loadwise.format.reader import compare_checksum, load_manifest
from loadwise.stores import ShardStore, open_store


def read(
    path: str | Path,
    *,
    fields: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    cache_limit: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """A lazy ``ray.data.Dataset`` over the shards at ``path`` (a folder or URL); ``fields``
    selects columns (all by default), and an ``index`` column gives each row's sample index."""
    try:
        import ray.data
        from ray.data.block import BlockMetadata
        from ray.data.datasource import Datasource, ReadTask
    except ImportError:
        raise MissingExtraError(
            "loadwise.ray.read needs Ray: pip install 'loadwise[ray]'"
        ) from None
    store = open_store(
        str(path), cache_dir=cache_dir, cache_limit=cache_limit, storage_options=storage_options
    )
    manifest = load_manifest(store)
    columns = [f.name for f in manifest.fields] if fields is None else list(fields)
    for name in columns:
        manifest.field(name)  # an unknown name is a FormatError listing the fields

    class _Shards(Datasource):
        def estimate_inmemory_data_size(self) -> int:
            return manifest.num_bytes

        def get_read_tasks(self, parallelism: int, **_: Any) -> list[Any]:  # type: ignore[override]
            return [
                ReadTask(
                    partial(_read_shard, store, shard, columns, int(first)),
                    BlockMetadata(
                        num_rows=shard.num_samples,
                        size_bytes=shard.num_bytes,
                        exec_stats=None,
                        input_files=(f"{store.location}/{shard.name}",),
                    ),
                )  # fmt: skip
                for shard, first in zip(manifest.shards, manifest.shard_starts(), strict=False)
            ]

    return ray.data.read_datasource(_Shards(), override_num_blocks=len(manifest.shards))


def _read_shard(store: ShardStore, shard: Any, columns: list[str], first: int) -> Iterable[Any]:
    """One shard as an Arrow table of ``columns`` and ``index`` (from ``first``), after its
    checksum passed."""
    import pyarrow as pa
    import xxhash

    with store.open(shard.name, shard.num_bytes) as file:
        data = file.read(shard.num_bytes, 0)
    compare_checksum(xxhash.xxh3_64_hexdigest(data), shard, store.location)
    table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
    index = pa.array(range(int(first), int(first) + table.num_rows), pa.int64())
    yield table.select(columns).append_column("index", index)


__all__ = ["read"]
