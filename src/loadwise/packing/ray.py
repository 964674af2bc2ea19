"""The Ray backend (``pack(..., engine="ray")``): records read and prepared on Ray tasks,
shards written by Ray tasks in parallel, byte-identical to a local pack of the same source.

How both engines cut the same shards: a shard ends at the first sample whose stored bytes
bring it to ``shard_bytes`` (``ShardWriter``'s rule), so its boundaries depend only on each
sample's stored size, in source order. Prepare tasks return those sizes (and failures) apart
from the prepared samples, which stay in Ray's object store; this process walks the sizes in
order, applies ``on_error`` in order, cuts shards exactly where the local writer would, and
hands each shard's samples to a write task that writes it with the same writer under the
same number. Fields come from the first readable sample, prepared here, as locally.

Progress is saved after every shard whose predecessors are all written, in the local
engine's form, so ``resume=True`` continues a killed pack with either engine. A Ray worker
that dies is retried by Ray (``RETRIES``); beyond that the pack fails with ``PackError``.
The staging folder must be reachable by every Ray worker (a local Ray, or a shared disk).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from loadwise.errors import ConfigError, LoadwiseError, MissingExtraError, PackError, SourceError
from loadwise.format.fields import FieldSpec
from loadwise.format.spec import ShardSpec, Skipped
from loadwise.format.writer import ShardWriter
from loadwise.packing.options import PackPlan
from loadwise.packing.partition import PartitionResult
from loadwise.packing.prepare import Failed, infer_fields, prepare_chunk
from loadwise.packing.progress import PackProgress
from loadwise.sources import IndexedSource, Source

#: Items per prepare task, and how many tasks of each kind may be in flight per CPU.
CHUNK = 256
IN_FLIGHT_PER_CPU = 2
#: Times Ray re-runs a task whose worker died before the pack fails.
RETRIES = 3

Meta = list[tuple[str, int, str | None]]  # (item, stored bytes or -1 failed / -2 refused, why)
Payload = tuple[list[str], list[dict[str, Any]]]  # item names, prepared samples


def pack_on_ray(
    src: Source, staging: Path, plan: PackPlan, done: PackProgress, progress: bool
) -> list[PartitionResult]:
    """The source as one partition in ``staging``, prepared and written on Ray."""
    if plan.on_error == "fallback":
        raise ConfigError(
            "pack(engine='ray') takes on_error='raise' or 'skip'; placeholders "
            "(on_error='fallback') are written by the local engine only: pass engine='local'."
        )
    ray = _ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        bar = tqdm(total=len(src), desc="pack (ray)", unit="item", disable=not progress,
                   leave=False)  # fmt: skip
        bar.update(done.items_done)
        with bar:
            return [_Driver(ray, src, staging, plan, done, bar).run()]
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, LoadwiseError):  # a refused sample, named by the task
            raise cause from None
        raise PackError(
            f"packing on Ray failed: {_first_line(exc)}. Run again with resume=True to keep "
            f"the shards already written."
        ) from None
    finally:
        if started_here:
            ray.shutdown()


@dataclass
class _Shard:
    """The samples of one shard: ``(payload ref, positions in it)`` per chunk, in order."""

    number: int
    parts: list[tuple[Any, list[int]]] = field(default_factory=list)
    end: int = 0  # the source item after its last sample
    skipped: int = 0  # items skipped before ``end``


class _Driver:
    """Walks prepared sizes in source order and cuts shards as ``ShardWriter`` would."""

    def __init__(
        self, ray: Any, src: Source, staging: Path, plan: PackPlan, done: PackProgress, bar: Any
    ) -> None:
        self.ray, self.src, self.staging, self.plan, self.done, self.bar = (
            ray, src, staging, plan, done, bar)  # fmt: skip
        cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        self.window = IN_FLIGHT_PER_CPU * cpus
        self.prepare = ray.remote(num_returns=2, max_retries=RETRIES)(_prepare_task)
        self.write = ray.remote(max_retries=RETRIES)(_write_task)
        self.shard = _Shard(len(done.shards))
        self.pending_bytes = 0
        self.skipped = list(done.skipped)
        self.writes: deque[tuple[_Shard, Any]] = deque()

    def run(self) -> PartitionResult:
        item = self.done.items_done
        for meta, payload in self._prepared(item):
            for position, (name, size, why) in enumerate(meta):
                item += 1
                self._take(name, size, why, payload, position, item)
            self._drain(self.window)
        if self.shard.parts:
            self.shard.end, self.shard.skipped = item, len(self.skipped)
            self._submit()
        self._drain(0)
        self.done.items_done, self.done.skipped = item, list(self.skipped)
        return PartitionResult(self.done.fields, tuple(self.done.shards), tuple(self.skipped))

    def _take(self, name: str, size: int, why: str | None, payload: Any, at: int, end: int) -> None:
        """One item in source order: skipped, refused, or added to the shard being cut."""
        if size == -1:
            if self.plan.on_error == "raise":
                raise SourceError(f"{why} (pass on_error='skip' to leave it out)")
            self.skipped.append(Skipped(name, str(why)))
            return
        if size == -2:
            raise SourceError(str(why))
        parts = self.shard.parts
        if parts and parts[-1][0] is payload:
            parts[-1][1].append(at)
        else:
            parts.append((payload, [at]))
        self.pending_bytes += size
        if self.pending_bytes >= self.plan.layout.shard_bytes:
            self.shard.end, self.shard.skipped = end, len(self.skipped)
            self._submit()

    def _submit(self) -> None:
        shard, layout = self.shard, self.plan.layout
        positions = [p for _, p in shard.parts]
        refs = [r for r, _ in shard.parts]
        spec = (str(self.staging), self.done.fields, layout.shard_bytes, layout.block_bytes)
        self.writes.append((shard, self.write.remote(spec, shard.number, positions, *refs)))
        self.shard, self.pending_bytes = _Shard(shard.number + 1), 0

    def _drain(self, keep: int) -> None:
        """Collect finished writes in order (saving progress) until ``keep`` are in flight."""
        while len(self.writes) > keep:
            shard, ref = self.writes.popleft()
            written: ShardSpec = self.ray.get(ref)
            self.done.shards.append(written)
            self.done.items_done = shard.end
            self.done.skipped = self.skipped[: shard.skipped]
            self.done.save(self.staging)
            self.bar.update(shard.end - self.bar.n)

    def _prepared(self, start: int) -> Iterator[tuple[Meta, Any]]:
        """Each chunk's ``(meta, payload ref)`` in source order, tasks bounded in flight.

        The first chunks are prepared here until one sample is readable: it gives the
        fields (unless a resumed pack knows them), as in the local engine."""
        chunks = _chunks(self.src, start)
        if not self.done.fields:
            for records in chunks:
                prepared = prepare_chunk(self.plan.decode, records)
                fields = _fields_of(prepared, self.src.categories, self.plan)
                self.done.fields = fields
                yield _sized(prepared, fields), self.ray.put(_payload(prepared))
                if fields:
                    break
        if isinstance(chunks, _RangesThenRecords):
            chunks.ranges_now()
        source = self.ray.put(self.src) if isinstance(self.src, IndexedSource) else None
        decode, fields = self.plan.decode, self.done.fields
        flight: deque[tuple[Any, Any]] = deque()
        for records in chunks:
            task = (source, records[0], records[1]) if source is not None else (None, records)
            flight.append(self.prepare.remote(decode, fields, *task))
            if len(flight) >= self.window:
                meta_ref, payload = flight.popleft()
                yield self.ray.get(meta_ref), payload
        while flight:
            meta_ref, payload = flight.popleft()
            yield self.ray.get(meta_ref), payload


def _chunks(src: Source, start: int) -> Iterable[Any]:
    """Ranges ``(start, stop)`` of an indexed source (its records are read by the task),
    else lists of records; the first ones are always lists (prepared here)."""
    if isinstance(src, IndexedSource):
        ranges = ((a, min(a + CHUNK, len(src))) for a in range(start, len(src), CHUNK))
        return _RangesThenRecords(src, ranges)
    records = itertools.islice(iter(src), start, None)
    return iter(lambda: list(itertools.islice(records, CHUNK)), [])


class _RangesThenRecords:
    """Ranges of an indexed source, read here as records until the fields are known."""

    def __init__(self, src: IndexedSource, ranges: Iterator[tuple[int, int]]) -> None:
        self.src, self.ranges, self.as_records = src, ranges, True

    def __iter__(self) -> Iterator[Any]:
        for a, b in self.ranges:
            yield list(self.src.records(a, b)) if self.as_records else (a, b)

    def ranges_now(self) -> None:
        self.as_records = False


def _prepare_task(
    decode: Any, fields: tuple[FieldSpec, ...], source: Any, *task: Any
) -> tuple[Meta, Payload]:
    """On a Ray worker: a chunk prepared; sizes and failures apart from the samples."""
    records = list(source.records(*task)) if source is not None else task[0]
    prepared = prepare_chunk(decode, records)
    return _sized(prepared, fields), _payload(prepared)


def _write_task(spec: tuple[str, tuple[FieldSpec, ...], int, int], number: int,
                positions: list[list[int]], *payloads: Payload) -> ShardSpec:  # fmt: skip
    """On a Ray worker: one shard written with the local engine's writer and number."""
    folder, fields, shard_bytes, block_bytes = spec
    writer = ShardWriter(Path(folder), fields, shard_bytes, block_bytes, first_shard=number)
    shards: list[ShardSpec | None] = []
    for (items, samples), where in zip(payloads, positions, strict=True):
        shards.extend(writer.add(samples[at], items[at]) for at in where)
    shards.append(writer.flush())
    made = [s for s in shards if s is not None]
    if len(made) != 1:
        raise PackError(f"shard {number} was cut into {len(made)} files: a loadwise bug.")
    return made[0]


def _sized(prepared: Sequence[tuple[str, Any]], fields: Sequence[FieldSpec]) -> Meta:
    """Per item: its stored bytes under ``fields`` (the writer's cut rule), or why not."""
    meta: Meta = []
    for item, sample in prepared:
        if isinstance(sample, Failed):
            meta.append((item, -1, sample.reason))
            continue
        extra = sorted(map(str, sample.keys() - {spec.name for spec in fields}))
        if extra:  # as the local engine: never dropped
            names = sorted(spec.name for spec in fields)
            meta.append((item, -2, f"sample `{item}` has field(s) {extra} that the dataset's "
                         f"fields {names} (from its first sample) lack; every sample must have "
                         f"the same fields. Add them to every sample, or drop them."))  # fmt: skip
            continue
        try:
            size = sum(_stored(spec, sample, item) for spec in fields)
        except SourceError as exc:
            meta.append((item, -2, str(exc)))
            continue
        meta.append((item, size, None))
    return meta


def _stored(spec: FieldSpec, sample: Mapping[str, Any], item: str) -> int:
    value = sample.get(spec.name)
    if value is None:
        raise SourceError(f"sample `{item}` has no field `{spec.name}`; every sample needs it.")
    return spec.stored_bytes(spec.check(value, item, item))


def _payload(prepared: Sequence[tuple[str, Any]]) -> Payload:
    """Item names and prepared samples by position (failures as empty dicts, never written)."""
    return [i for i, _ in prepared], [{} if isinstance(s, Failed) else s for _, s in prepared]


def _fields_of(
    prepared: Sequence[tuple[str, Any]], categories: Mapping[str, tuple[str, ...]], plan: PackPlan
) -> tuple[FieldSpec, ...]:
    for _, sample in prepared:
        if not isinstance(sample, Failed):
            return infer_fields(sample, categories, plan.schema)
    return ()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError(
            "pack(engine='ray') needs Ray: pip install 'loadwise[ray]'"
        ) from None
    return ray


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
