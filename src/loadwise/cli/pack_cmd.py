"""``loadwise pack SRC DEST``: pack an image folder or archive into shards plus a manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadwise.errors import ConfigError
from loadwise.packing import ShardLayout, pack
from loadwise.render import human_bytes
from loadwise.sources import ArchiveSource, DecodeOptions, ImageOptions, Source, folder_source
from loadwise.sources.archive import is_archive


def run(args: argparse.Namespace) -> int:
    image = ImageOptions(size=_size(args.image_size), mode=args.image_mode, encoded=args.encoded)
    report = pack(
        _source(Path(args.source).expanduser(), args.layout),
        args.dest,
        decode=DecodeOptions(image=image),
        layout=ShardLayout(shard_bytes=int(args.shard_mb * 2**20)),
        workers=args.workers,
        on_error=args.on_error,
        overwrite=args.overwrite,
    )
    print(
        f"packed {report.num_samples:,} samples into {report.num_shards} shard(s), "
        f"{human_bytes(report.num_bytes)}, in {report.seconds:.1f} s: {report.path}"
    )
    for skipped in report.skipped:
        print(f"skipped {skipped.item}: {skipped.reason}")
    return 0


def _size(size: list[int] | None) -> tuple[int, int] | None:
    """``--image-size N`` (a square) or ``H W``; anything else is refused, not guessed."""
    if size is None:
        return None
    if len(size) not in (1, 2):
        raise ConfigError(
            f"`--image-size` takes one number (a square) or two (height width). Found: "
            f"{' '.join(map(str, size))}."
        )
    return size[0], size[-1]


def _source(path: Path, layout: str) -> Source:
    """A folder, or an archive (``.zip``, ``.tar[.gz|.bz2|.xz]``) read without extracting."""
    if not is_archive(path):
        return folder_source(path, layout)
    archive = ArchiveSource(path)
    found = "omniglot" if "alphabet" in archive.categories else "classes"
    if layout not in ("auto", found):
        raise ConfigError(
            f"`--layout {layout}` does not match archive `{path}`, which holds a {found} "
            f"layout; pass `--layout auto`."
        )
    return archive
