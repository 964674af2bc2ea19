"""Each pack's shards get names of their own, so a reader never mixes two packs of one
destination.

When ``pack --overwrite`` replaces a dataset that is being read, a reader holding the old
manifest must not pick up shards of the new pack under the old names (a mixed dataset, or
misleading checksum errors). The generation is a hash of what the shards hold (their
checksums and sample counts, and the fields), written in the manifest and in front of every
shard's name (``<generation>-00000.arrow``): the same content always gets the same names
(packs stay reproducible, byte for byte), and any other content other names, which the old
manifest does not list.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import xxhash

from loadwise.format.spec import Manifest
from loadwise.system import fsync_path


def generation_of(manifest: Manifest) -> str:
    """The id of the dataset a manifest describes: a hash of its fields and shard contents."""
    content = [[f.to_dict() for f in manifest.fields]] + [
        [s.xxh3_64, s.num_samples, s.num_bytes] for s in manifest.shards
    ]
    return xxhash.xxh3_64_hexdigest(json.dumps(content, sort_keys=True).encode())[:8]


def stamp_generation(folder: Path, manifest: Manifest, durable: bool = True) -> Manifest:
    """Rename the shards in ``folder`` to ``<generation>-<name>`` (before the manifest is
    written, so nothing lists the old names; fsynced if ``durable``) and return the manifest
    saying so."""
    generation = generation_of(manifest)
    shards = []
    for shard in manifest.shards:
        name = f"{generation}-{shard.name}"
        os.rename(folder / shard.name, folder / name)
        shards.append(replace(shard, name=name))
    if durable:
        fsync_path(folder)
    return replace(manifest, shards=tuple(shards), generation=generation)
