"""Pack a Hugging Face dataset's media once into the cache, and reuse it on every later run.

An entry in ``$LOADWISE_CACHE/hf/`` is named by the dataset's name and a hash of the HF
fingerprint (content and every transform applied, so ``select``/``max_samples`` count) and
of the arguments (columns, decode options, error policy, fetch options, format version).
The second run of a script finds it and opens it at once: no request, no decode. Packing
takes the folder cache's lock (``cache.py``), so concurrent processes pack once, and resumes
a killed load (``resume=True``: finished shards are kept, so only the items of the
unfinished shard are fetched again). Before anything is fetched, the memory the loaded data
will take is estimated from the first samples and checked against ``max_memory_usage``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash
from tqdm import tqdm

from loadwise.access.budget import available_memory, check_fraction
from loadwise.cache_dir import cache_dir
from loadwise.compat.cache import finished, locked
from loadwise.errors import ConfigError, PackError
from loadwise.format.codecs import SIZED_DECODE_REVISION
from loadwise.format.reader import read_manifest
from loadwise.format.spec import FORMAT_VERSION
from loadwise.packing import PackPlan, ShardLayout, pack
from loadwise.sources import DecodeOptions, HFSource, HFStreamSource, ImageBytes, ImageFile, Media
from loadwise.sources.failures import FailureCount, count_failures
from loadwise.sources.urls import ImageURL

log = logging.getLogger(__name__)

#: Small shards, so a killed load resumes having lost (and fetches again) at most ~16 MiB.
SHARD_BYTES = 16 * 2**20
_PROBE = 8  # samples measured for the memory estimate


@dataclass(frozen=True)
class LoadReport:
    """What loading a dataset into memory gave: samples, how many are real (``valid``), the
    failures by reason with their first URLs, bytes held, seconds, and whether it came from
    the cache."""

    path: Path
    samples: int
    valid: int
    failures: tuple[FailureCount, ...]
    stored_bytes: int
    seconds: float
    from_cache: bool

    @property
    def failed(self) -> int:
        return sum(f.count for f in self.failures)

    def text(self) -> str:
        """A few lines for people: totals, then one line per failure reason."""
        origin = "opened from the cache" if self.from_cache else "read, decoded and packed"
        lines = [
            f"{self.samples:,} samples ({self.valid:,} valid, {self.failed:,} failed), "
            f"{self.stored_bytes / 2**20:,.1f} MiB in memory, {origin} in {self.seconds:.2f} s"
        ]
        for f in self.failures:
            lines.append(f"  {f.reason:<18} {f.count:>6,}  e.g. {', '.join(f.examples)}")
        return "\n".join(lines)


def packed_hf(
    source: HFSource | HFStreamSource,
    decode: DecodeOptions,
    *,
    on_error: str,
    max_memory_usage: float | None,
    workers: int,
    what: str,
) -> tuple[Path, bool]:
    """The cache entry of ``source`` packed with ``decode``, and whether it was there already.

    A stream without a fingerprint (an ``IterableDataset``) is packed into a private entry
    (``private_entry``): nothing identifies it for a later run.
    """
    PackPlan(decode=decode, on_error=on_error, workers=workers)  # refuse bad options early
    described = source.describe()
    if "fingerprint" not in described:
        dest = Path(tempfile.mkdtemp(prefix="stream-", dir=_hf_dir())) / "data"
        try:
            _load(source, dest, decode, on_error, max_memory_usage, workers, what, resume=False)
        except BaseException:
            shutil.rmtree(dest.parent, ignore_errors=True)
            raise
        return dest, False
    revisions = [FORMAT_VERSION, SIZED_DECODE_REVISION]
    key = json.dumps([described, _plain(decode), on_error, revisions], sort_keys=True)
    dest = _hf_dir() / f"{_name(source)}-{xxhash.xxh3_64_hexdigest(key.encode())}"
    if finished(dest):
        return dest, True
    with locked(dest):
        if finished(dest):
            return dest, True
        _load(source, dest, decode, on_error, max_memory_usage, workers, what, resume=True)
    return dest, False


def discard(path: Path) -> None:
    """Remove a cache entry that failed its checksums (cache packs are not fsynced, so a
    power loss may leave one): the next ``packed_hf`` builds it again."""
    log.warning("cache entry `%s` failed its checksums; packing it again", path)
    with locked(path):
        shutil.rmtree(path, ignore_errors=True)


def private_entry(path: Path) -> bool:
    """Whether ``path`` is a stream's private entry, to be removed with its dataset."""
    return path.parent.name.startswith("stream-") and path.parent.parent == _hf_dir()


def load_report(path: Path, on_error: str, seconds: float, from_cache: bool) -> LoadReport:
    """The report of a loaded entry, from its manifest."""
    manifest = read_manifest(path)
    failures = count_failures(s.reason for s in manifest.skipped)
    placeholders = len(manifest.skipped) if on_error == "fallback" else 0
    return LoadReport(
        path,
        manifest.num_samples,
        manifest.num_samples - placeholders,
        failures,
        manifest.num_bytes,
        seconds,
        from_cache,
    )


def _load(
    source: HFSource | HFStreamSource,
    dest: Path,
    decode: DecodeOptions,
    on_error: str,
    max_memory_usage: float | None,
    workers: int,
    what: str,
    *,
    resume: bool,
) -> None:
    check_budget(source, decode, max_memory_usage, what)
    with _progress(source, what):
        try:
            pack(
                source,
                dest,
                decode=decode,
                layout=ShardLayout(shard_bytes=SHARD_BYTES),
                workers=workers,
                on_error=on_error,
                resume=resume,
                progress=False,
                durable=False,  # a cache: rebuilt when lost (IntegrityError), never fsynced
            )
        except PackError:
            if not finished(dest):  # another process (without flock) packed it first
                raise


def check_budget(
    source: HFSource | HFStreamSource,
    decode: DecodeOptions,
    max_memory_usage: float | None,
    what: str,
) -> None:
    """Refuse, before anything is fetched, data whose estimated size (from the first
    samples) exceeds ``max_memory_usage`` of the available memory (all of it if None)."""
    fraction = check_fraction(
        "max_memory_usage", 1.0 if max_memory_usage is None else max_memory_usage
    )
    count = len(source)
    if count == 0:
        return
    each = _bytes_per_sample(source, decode)
    available = available_memory()
    budget = fraction * available
    if each * count <= budget:
        return
    fits = int(budget // max(each, 1))
    advice = (
        f"lower max_samples to {fits:,} or raise max_memory_usage"
        if fits >= 1
        else "not even one sample fits: raise max_memory_usage"
    )
    raise ConfigError(
        f"{what}: {count:,} samples need about {each * count / 2**20:,.1f} MiB ({each:,} bytes "
        f"each, measured on the first {min(_PROBE, count)}); max_memory_usage={fraction:g} "
        f"allows {budget / 2**20:,.1f} MiB of the {available / 2**20:,.0f} MiB available "
        f"(cgroup-aware): {advice}."
    )


def _bytes_per_sample(source: HFSource | HFStreamSource, decode: DecodeOptions) -> int:
    """Mean stored bytes of the first samples: decoded images by their size alone (nothing
    fetched), other media prepared; failures count as the others' mean."""
    sizes = []
    for _, record in source.peek(_PROBE):
        try:
            sizes.append(1 + sum(_stored(value, decode) for value in record.values()))
        except Exception:  # an unreadable sample says nothing about the others' size
            continue
    return -(-sum(sizes) // len(sizes)) if sizes else 1


def _stored(value: Any, decode: DecodeOptions) -> int:
    image = decode.image
    if isinstance(value, ImageURL | ImageBytes | ImageFile) and image.size and not image.encoded:
        return (1 if image.mode == "L" else 3) * image.size[0] * image.size[1]
    if isinstance(value, Media):
        value = value.prepare(decode)
    if isinstance(value, str):
        return len(value.encode())
    data = getattr(value, "data", None)
    if isinstance(data, bytes):
        return len(data)
    nbytes = getattr(value, "nbytes", None)
    return int(nbytes) if nbytes is not None else len(value) if isinstance(value, bytes) else 8


@contextmanager
def _progress(source: HFSource | HFStreamSource, what: str) -> Iterator[None]:
    """A tqdm bar of samples read, MB read and failures, fed from the source's tally (which
    ``pack``'s forked workers add to) while the block runs."""
    done = threading.Event()
    bar = tqdm(total=len(source), desc=f"loading {what}", unit="sample", disable=None)

    def follow() -> None:
        while not done.wait(0.25):
            items, nbytes, failures = source.tally.totals()
            bar.n = min(items, len(source))
            bar.set_postfix_str(f"{nbytes / 1e6:,.1f} MB, {failures:,} failed", refresh=True)

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        bar.n = len(source)
        bar.set_postfix_str(f"{time.perf_counter() - started:.1f} s", refresh=False)
        bar.close()


def _hf_dir() -> Path:
    folder = cache_dir("hf")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the loadwise cache folder `{folder}` ({exc}).") from exc
    return folder


def _name(source: HFSource | HFStreamSource) -> str:
    info = getattr(source.dataset, "info", None)
    name = getattr(info, "dataset_name", None) or "dataset"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))[:60]


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    return list(value) if isinstance(value, tuple) else value
