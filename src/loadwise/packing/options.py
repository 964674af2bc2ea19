"""``pack``'s options as small frozen values: how media decode, how shards are cut, and
the plan that every shard depends on besides the source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from loadwise.errors import ConfigError
from loadwise.format.fields import FieldSpec
from loadwise.format.spec import BLOCK_BYTES
from loadwise.sources.media import DecodeOptions

DEFAULT_SHARD_BYTES = 128 * 2**20
ON_ERROR = ("raise", "skip", "fallback")


@dataclass(frozen=True)
class ShardLayout:
    """About ``shard_bytes`` of samples per shard file, checksummed per ``block_bytes``
    (reads verify a block before serving a byte of it; 1 MiB keeps first reads cheap)."""

    shard_bytes: int = DEFAULT_SHARD_BYTES
    block_bytes: int = BLOCK_BYTES

    def __post_init__(self) -> None:
        for name in ("shard_bytes", "block_bytes"):
            _at_least_one(name, getattr(self, name))


@dataclass(frozen=True)
class PackPlan:
    """Everything the shards depend on besides the source (and ``workers`` and ``durable``,
    which do not change a byte): the schema given, media decoding, the layout, the error
    policy. ``durable=False`` skips every fsync (for rebuildable caches only: see ``pack``)."""

    decode: DecodeOptions = field(default_factory=DecodeOptions)
    layout: ShardLayout = field(default_factory=ShardLayout)
    schema: tuple[FieldSpec, ...] = ()
    on_error: str = "raise"
    workers: int = 1
    durable: bool = True

    def __post_init__(self) -> None:
        _at_least_one("workers", self.workers)
        if self.on_error not in ON_ERROR:
            raise ConfigError(
                f"`on_error` must be one of {', '.join(ON_ERROR)}. Found: {self.on_error!r}."
            )
        names = [spec.name for spec in self.schema]
        if not all(isinstance(spec, FieldSpec) for spec in self.schema) or len(set(names)) < len(
            names
        ):
            raise ConfigError(
                f"`schema` is a list of fields with distinct names (e.g. "
                f"`[RaggedField('tokens', 'int32')]`). Found: {list(self.schema)!r}."
            )

    def key(self) -> dict[str, Any]:
        """What must match for a resumed pack to continue a killed one (not ``workers`` nor
        ``durable``)."""
        return {
            "decode": _plain(self.decode),
            "layout": _plain(self.layout),
            "schema": [spec.to_dict() for spec in self.schema],
            "on_error": self.on_error,
        }


#: ``pack``'s keyword arguments from before the options were grouped, and where each goes.
LEGACY_OPTIONS = {
    "image_size": ("image", "size"),
    "image_mode": ("image", "mode"),
    "encoded": ("image", "encoded"),
    "shard_bytes": ("layout", "shard_bytes"),
    "block_bytes": ("layout", "block_bytes"),
}


def with_legacy(
    decode: DecodeOptions, layout: ShardLayout, given: Mapping[str, Any]
) -> tuple[DecodeOptions, ShardLayout]:
    """``decode`` and ``layout`` with the older keyword arguments in ``given`` applied."""
    unknown = sorted(set(given) - set(LEGACY_OPTIONS))
    if unknown:
        raise ConfigError(
            f"`pack` got unknown argument(s) {unknown}; valid: decode, layout, schema, "
            f"workers, on_error, overwrite, resume, progress, engine, durable, and the older "
            f"{', '.join(LEGACY_OPTIONS)}."
        )
    image = {LEGACY_OPTIONS[k][1]: v for k, v in given.items() if LEGACY_OPTIONS[k][0] == "image"}
    shards = {LEGACY_OPTIONS[k][1]: v for k, v in given.items() if LEGACY_OPTIONS[k][0] == "layout"}
    if image:
        decode = replace(decode, image=replace(decode.image, **image))
    return decode, replace(layout, **shards) if shards else layout


def _at_least_one(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"`{name}` must be an integer >= 1. Found: {value!r}.")


def _plain(value: Any) -> Any:
    """A frozen options value as JSON-able dicts and lists."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def as_schema(schema: Sequence[FieldSpec] | None) -> tuple[FieldSpec, ...]:
    return tuple(schema or ())
