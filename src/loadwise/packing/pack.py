"""``pack``: read a source once and write shards plus a manifest, atomically.

Everything is written into a hidden sibling folder (``staging.py``), fsynced, the manifest
last; only then is it renamed to the destination. A crash leaves no folder at the
destination that opens. The work itself is a backend's (``ENGINES``): it prepares the
source and writes partitions (``partition.py``); the manifest is assembled here.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from loadwise.cache_dir import cache_dir
from loadwise.errors import ConfigError, LoadwiseError, PackError
from loadwise.format.codecs import SIZED_DECODE_REVISION
from loadwise.format.fields import FieldSpec
from loadwise.format.spec import FORMAT_VERSION, MANIFEST_NAME, Manifest, Skipped, manifest_to_json
from loadwise.packing.generation import stamp_generation
from loadwise.packing.local import pack_locally
from loadwise.packing.options import PackPlan, ShardLayout, with_legacy
from loadwise.packing.partition import PartitionResult, assemble_manifest
from loadwise.packing.progress import PROGRESS_NAME, PackProgress
from loadwise.packing.ray import pack_on_ray
from loadwise.packing.staging import check_dest, publish, staging_dir, write_durably
from loadwise.sources import DecodeOptions, ImageOptions, Source, as_source, declared_schema
from loadwise.sources.media import image_rules
from loadwise.stores import is_url
from loadwise.system import fsync_path, write_advice

log = logging.getLogger(__name__)

Engine = Callable[[Source, Path, PackPlan, PackProgress, bool], list[PartitionResult]]
#: Who does the work: preparing the source and writing its partitions' shards.
ENGINES: dict[str, Engine] = {"local": pack_locally, "ray": pack_on_ray}


@dataclass(frozen=True)
class PackReport:
    """What ``pack`` wrote and what it left out (``path``: a folder, or the URL packed to)."""

    path: Path | str
    num_samples: int
    num_shards: int
    num_bytes: int
    skipped: tuple[Skipped, ...]
    seconds: float


def pack(
    source: Any,
    dest: str | Path,
    *,
    schema: Sequence[FieldSpec] | None = None,
    decode: DecodeOptions | None = None,
    layout: ShardLayout | None = None,
    workers: int = 1,
    on_error: str = "raise",
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    engine: str = "local",
    durable: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    **older: Any,
) -> PackReport:
    """Pack ``source`` (a folder, an archive, arrays, an iterable of dicts, a ``Source``)
    into shards at ``dest``.

    ``schema`` names the kind of some or all fields (``RaggedField("tokens", "int32")``);
    the others are derived from the first sample. ``decode`` says how media are stored
    (``DecodeOptions(image=ImageOptions(size=(H, W), mode="RGB", encoded=False))``);
    ``layout`` how big shards and checksum blocks are. The older keyword arguments
    ``image_size``, ``image_mode``, ``encoded``, ``shard_bytes`` and ``block_bytes`` still
    work. ``on_error="skip"`` leaves out unreadable items and records them in the manifest
    and the report. ``workers`` processes prepare items (the output does not change).

    ``resume=True`` continues a pack of the same source and options that was killed: the
    shards it finished are checked and kept, and the result is identical to an
    uninterrupted pack. Without it, leftovers of dead packs are removed.

    ``dest`` may be a URL (``s3://bucket/prefix``; ``storage_options`` go to fsspec): the
    pack is written in a local staging folder, then its shards are uploaded and the manifest
    last, so no reader sees a partial dataset. ``engine="ray"`` prepares and writes on Ray.
    ``durable=False`` skips every fsync (shards, progress, manifest, the publishing rename):
    only for data that can be rebuilt, such as a cache. A crash still never leaves a folder
    at ``dest`` that opens (the rename is last); only a power loss may leave a published
    pack with lost bytes, which its checksums then refuse as an ``IntegrityError``.
    """
    decoded, shards = with_legacy(decode or DecodeOptions(), layout or ShardLayout(), older)
    run = _engine(engine)
    src = as_source(source)
    given = tuple(schema or ())  # the source's declared kinds, unless `schema` names them
    named = {spec.name for spec in given}
    declared = tuple(spec for spec in declared_schema(src) if spec.name not in named)
    plan = PackPlan(decoded, shards, declared + given, on_error, workers, durable)
    url = str(dest).rstrip("/") if is_url(str(dest)) else None
    if url is not None:  # packed in a local staging folder, then uploaded
        from loadwise.stores.upload import check_remote_dest, upload

        check_remote_dest(url, storage_options or {}, overwrite)
        dest = cache_dir("staging", xxhash.xxh3_64_hexdigest(url.encode()), "dataset")
    else:
        dest = Path(dest).expanduser().resolve()
        check_dest(dest, overwrite)
    started = time.perf_counter()
    described = src.describe()  # once: for a folder it stats every file
    key = _key(described, plan, resume)
    try:
        staging, done = staging_dir(dest, key if resume else None)
    except OSError as exc:
        raise write_error(dest, exc) from exc
    try:
        parts = run(src, staging, plan, done or PackProgress(key), progress)
        manifest = assemble_manifest(parts, _with_rules(described, plan), _name(described, src))
        manifest = stamp_generation(staging, manifest, durable)
        _write_manifest(staging, manifest, durable)
        if url is None:
            publish(staging, dest, overwrite, durable)
        else:
            upload(staging, url, storage_options or {}, overwrite)
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException as exc:
        if not resume:  # with resume the finished shards are kept for the next attempt
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, LoadwiseError):  # disk full, ...
            raise write_error(dest, exc) from exc
        raise
    seconds = time.perf_counter() - started
    log.info("packed %d samples into %s in %.1f s", manifest.num_samples, url or dest, seconds)
    return PackReport(
        dest if url is None else url,
        manifest.num_samples,
        len(manifest.shards),
        manifest.num_bytes,
        manifest.skipped,
        seconds,
    )


def _engine(name: str) -> Engine:
    if name not in ENGINES:
        raise ConfigError(f"`engine` must be one of {', '.join(ENGINES)}. Found: {name!r}.")
    return ENGINES[name]


def _write_manifest(staging: Path, manifest: Manifest, durable: bool) -> None:
    """The manifest last (durably if ``durable``); the progress file goes."""
    write_durably(staging / MANIFEST_NAME, manifest_to_json(manifest).encode(), durable)
    (staging / PROGRESS_NAME).unlink(missing_ok=True)
    if durable:
        fsync_path(staging)


def _key(described: dict[str, Any], plan: PackPlan, resume: bool) -> str:
    """What must match for a resumed pack to continue a killed one: source and options."""
    if resume and "fingerprint" not in described:
        raise ConfigError(
            f"`resume=True` needs a source whose content can be fingerprinted (a folder or "
            f"arrays); `{described.get('root', 'this source')}` ({described.get('kind')}) "
            f"cannot be. Pack without resume."
        )
    options = {**plan.key(), "format": FORMAT_VERSION, "sized_decode": SIZED_DECODE_REVISION}
    return xxhash.xxh3_64_hexdigest(json.dumps([described, options], sort_keys=True).encode())


#: Sources whose items are images ``pack`` decodes (their ``describe()["kind"]``).
IMAGE_SOURCES = ("image-folder", "omniglot-folder", "archive")


def _with_rules(described: dict[str, Any], plan: PackPlan) -> dict[str, Any]:
    """The source as the manifest records it: for images, also what decoding did to them
    (depth kept or scaled, orientation), which ``loadwise info`` shows."""
    if described.get("kind") not in IMAGE_SOURCES and plan.decode.image == ImageOptions():
        return described
    return described | {"images": image_rules(plan.decode.image)}


def write_error(dest: Path, exc: OSError) -> PackError:
    """An operating system error while writing a pack, with what to do about it."""
    where = f" (`{exc.filename}`)" if exc.filename else ""
    advice = write_advice(
        exc,
        room="free some space (or raise the quota), or pack to another destination",
        allowed="choose a destination this user can write to",
        other="check the destination's disk and folder",
    )
    return PackError(
        f"cannot write the pack of `{dest}`: {exc.strerror or exc}{where}; {advice}. "
        f"Nothing was published at `{dest}`."
    )


def _name(described: dict[str, Any], src: Source) -> str:
    return str(described.get("root", type(src).__name__))
