"""The seam between preparing samples and publishing a dataset: ``write_partition`` turns one
partition's prepared pieces into shards, ``assemble_manifest`` joins partitions' shards into
one manifest. A backend (``local.py``: this machine's processes) runs the first per
partition, then the second once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadwise._version import __version__
from loadwise.errors import SourceError
from loadwise.format.fields import FieldSpec
from loadwise.format.spec import Manifest, ShardSpec, Skipped
from loadwise.format.writer import ShardWriter
from loadwise.packing.fallback import VALID, placeholder, valid_rows, with_valid
from loadwise.packing.options import PackPlan
from loadwise.packing.prepare import Failed, infer_fields
from loadwise.packing.progress import PackProgress
from loadwise.packing.slots import Piece, RowBlock


@dataclass(frozen=True)
class PartitionResult:
    """What one partition wrote: its fields, shards (in order) and the items it skipped."""

    fields: tuple[FieldSpec, ...]
    shards: tuple[ShardSpec, ...]
    skipped: tuple[Skipped, ...]


def write_partition(
    pieces: Iterable[Piece],
    folder: Path,
    plan: PackPlan,
    *,
    categories: Mapping[str, tuple[str, ...]],
    shard_prefix: str = "",
    progress: PackProgress,
    on_items: Any = None,
) -> PartitionResult:
    """Write ``pieces`` (prepared samples and row blocks, in source order) as shards named
    ``<shard_prefix>NNNNN.arrow`` in ``folder``; ``on_error`` applied in source order.

    Fields come from ``progress`` (a resumed partition), else ``plan.schema`` plus the first
    readable sample. ``progress`` is updated and saved in ``folder`` after every shard, so a
    killed partition resumes where it stopped; ``on_items(n)`` is told of items consumed.
    """
    shards = _Shards(folder, plan, progress, categories, shard_prefix)
    for piece in pieces:
        consumed = shards.add(piece)
        if on_items is not None:
            on_items(consumed)
    return shards.finish()


def assemble_manifest(
    parts: Sequence[PartitionResult], source: Mapping[str, Any], name: str
) -> Manifest:
    """One manifest over the partitions' shards, in partition order; ``name`` says what was
    packed in errors. Every partition must have the same fields."""
    written = [p for p in parts if p.shards]
    skipped = tuple(s for p in parts for s in p.skipped)
    if not written:
        raise SourceError(f"no sample of `{name}` could be read; {len(skipped)} skipped.")
    fields = written[0].fields
    for part in written[1:]:
        if part.fields != fields:
            raise SourceError(
                f"partitions of `{name}` have different fields ({part.fields} vs {fields}); "
                f"pass `schema=` so every partition stores the same."
            )
    return Manifest(
        fields=fields,
        shards=tuple(s for p in written for s in p.shards),
        source=dict(source),
        skipped=skipped,
        created_by=f"loadwise {__version__}",
    )


class _Shards:
    """Prepared pieces into shards, ``on_error`` applied in source order, progress saved
    after every shard."""

    def __init__(
        self,
        folder: Path,
        plan: PackPlan,
        done: PackProgress,
        categories: Mapping[str, tuple[str, ...]],
        prefix: str,
    ) -> None:
        self.folder, self.plan, self.done = folder, plan, done
        self.categories, self.prefix = categories, prefix
        self.writer = self._writer(done.fields, len(done.shards)) if done.fields else None
        self.names: set[str] | None = None
        self.fallback = plan.on_error == "fallback"
        self.unplaced: list[str] = []  # failed items met before the fields were known

    def _writer(self, fields: tuple[FieldSpec, ...], first_shard: int = 0) -> ShardWriter:
        layout = self.plan.layout
        return ShardWriter(
            self.folder,
            fields,
            layout.shard_bytes,
            layout.block_bytes,
            first_shard,
            self.prefix,
            durable=self.plan.durable,
        )

    def add(self, piece: Piece) -> int:
        """Take one piece; returns how many source items it held."""
        if isinstance(piece, RowBlock):
            self._add_block(piece)
            return len(piece.items)
        self._add_sample(*piece)
        return 1

    def _add_sample(self, item: str, sample: dict[str, Any] | Failed) -> None:
        """One prepared sample or failure; with ``fallback`` a failure becomes a placeholder
        (those met before the first readable sample wait until it fixes the fields)."""
        self.done.items_done += 1
        if isinstance(sample, Failed):
            if self.plan.on_error == "raise":
                raise SourceError(
                    f"{sample.reason} (pass on_error='skip' to leave it out, or 'fallback' "
                    f"to store a placeholder marked valid=False)"
                )
            self.done.skipped.append(Skipped(item, sample.reason))
            if not self.fallback:
                return
            if self.writer is None:
                self.unplaced.append(item)
                return
            sample = placeholder(self.done.fields)
        elif self.fallback:
            sample = with_valid(sample, item)
        if self.writer is None:
            self.done.fields = infer_fields(sample, self.categories, self.plan.schema, item)
            self.writer = self._writer(self.done.fields)
            self._place_waiting()
        if sample.keys() - self._names():
            self._refuse_extra(item, sample)
        self._finished(self.writer.add(sample, item))

    def _place_waiting(self) -> None:
        """Placeholders for the failures met before the fields were known (the only items
        consumed so far besides this one), progress saved as if each was written when met."""
        assert self.writer is not None
        skipped, consumed = self.done.skipped, self.done.items_done
        for j, waiting in enumerate(self.unplaced):
            self.done.items_done, self.done.skipped = j + 1, skipped[: j + 1]
            self._finished(self.writer.add(placeholder(self.done.fields), waiting))
        self.done.items_done, self.done.skipped, self.unplaced = consumed, skipped, []

    def _names(self) -> set[str]:
        if self.names is None:
            self.names = {f.name for f in self.done.fields}
        return self.names

    def _refuse_extra(self, item: str, sample: dict[str, Any]) -> None:
        """A sample with fields the dataset's first sample did not have: never dropped."""
        extra = sorted(map(str, sample.keys() - self._names()))
        raise SourceError(
            f"sample `{item}` has field(s) {extra} that the dataset's fields "
            f"{sorted(self._names())} (from its first sample) lack; every sample must have the "
            f"same fields. Add them to every sample, or drop them."
        )

    def _add_block(self, block: RowBlock) -> None:
        assert self.writer is not None, "rows come only after the sample that fixed the fields"
        start = 0
        if self.fallback:  # workers lay out the fields the source gives, without `valid`
            block.arrays[VALID] = valid_rows(len(block.items))
        while start < len(block.items):
            arrays = {k: v[start:] for k, v in block.arrays.items()}
            values = {k: v[start:] for k, v in block.values.items()}
            taken, shard = self.writer.add_rows(arrays, values, block.items[start:])
            self.done.items_done += taken
            start += taken
            self._finished(shard)

    def _finished(self, shard: ShardSpec | None) -> None:
        if shard is not None:
            self.done.shards.append(shard)
            self.done.save(self.folder, self.plan.durable)

    def finish(self) -> PartitionResult:
        """Write the last shard; the partition's shards, fields and skips."""
        last = self.writer.flush() if self.writer is not None else None
        shards = tuple(self.done.shards + ([last] if last is not None else []))
        return PartitionResult(self.done.fields, shards, tuple(self.done.skipped))
