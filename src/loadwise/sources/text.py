"""Text as a source, tokenized once at pack time into token ids (a ragged int32 field).

What it reads: a ``.txt`` file (one sample per line), a ``.jsonl`` file (an object per line
with ``text_key`` and optionally ``label_key``), a folder of ``<class>/<file>.txt`` (one
sample per file, labelled by its folder), or any sequence of strings.

Each record is ``{"input_ids": int32 ids cut at max_length, "num_tokens": ids before the
cut, "label": ...}``; ``input_ids`` is declared a ``RaggedField`` (int64 offsets: 32-bit
list offsets overflow past 2**31 tokens). Empty lines are left out and counted; lines that
are not valid UTF-8 are decoded with U+FFFD replacements and counted (``errors="replace"``)
or refused naming the line (``errors="strict"``). The counts are in ``describe()``, so a
packed dataset's manifest keeps them; what ``max_length`` cut is in ``num_tokens``.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from loadwise.errors import ConfigError, SourceError
from loadwise.format.fields import RaggedField
from loadwise.sources.base import Record
from loadwise.sources.tokenize import Tokenizer, as_tokenizer

ERRORS = ("replace", "strict")
_BATCH = 256
_SCAN_BYTES = 16 << 20


def check_max_length(max_length: int | None) -> int | None:
    if max_length is not None and (not isinstance(max_length, int) or max_length <= 0):
        raise ConfigError(f"`max_length` must be an integer >= 1 (or None). Found: {max_length!r}.")
    return max_length


class TextSource:
    """Texts (and labels) tokenized into ``input_ids`` when records are read (by ``pack``)."""

    kind = "text"

    def __init__(
        self,
        data: str | Path | Sequence[str],
        tokenizer: Any = None,
        *,
        max_length: int | None = None,
        text_key: str = "text",
        label_key: str = "label",
        errors: str = "replace",
    ) -> None:
        if errors not in ERRORS:
            raise ConfigError(f"`errors` must be one of {', '.join(ERRORS)}. Found: {errors!r}.")
        self.max_length = check_max_length(max_length)
        self.tokenizer: Tokenizer = as_tokenizer(tokenizer)
        self.schema = (RaggedField("input_ids", "int32"),)
        self.errors, self.text_key, self.label_key = errors, text_key, label_key
        self.empty_lines = self.invalid_lines = 0
        self.categories: dict[str, tuple[str, ...]] = {}
        self._texts = _open_texts(self, data)

    def __len__(self) -> int:
        return len(self._texts)

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        return self.records(0, len(self))

    def records(self, start: int, stop: int) -> Iterator[tuple[str, Record]]:
        stop = min(stop, len(self))
        for low in range(start, stop, _BATCH):
            names, texts, labels = self._texts.read(low, min(low + _BATCH, stop))
            for name, ids, label in zip(names, self._encode(texts, names), labels, strict=True):
                cut = ids if self.max_length is None else ids[: self.max_length]
                record: Record = {"input_ids": cut, "num_tokens": np.int32(len(ids))}
                if label is not None:
                    record["label"] = np.int64(label)
                yield name, record

    def describe(self) -> dict[str, Any]:
        stamp = repr((self._texts.stamp(), self.tokenizer.fingerprint(), self.max_length,
                      self.errors, self.text_key, self.label_key))  # fmt: skip
        return {
            "kind": self.kind,
            "root": self._texts.where,
            "items": len(self),
            "tokenizer": self.tokenizer.fingerprint(),
            "max_length": self.max_length,
            "empty_lines": self.empty_lines,
            "invalid_utf8_lines": self.invalid_lines,
            "fingerprint": xxhash.xxh3_64_hexdigest(stamp.encode()),
        }

    def _encode(self, texts: list[str], names: list[str]) -> list[np.ndarray]:
        return self.tokenizer.encode_batch(texts, [f"text `{n}`" for n in names])


def _open_texts(source: TextSource, data: str | Path | Sequence[str]) -> _Texts:
    if isinstance(data, str | Path):
        path = Path(data).expanduser().resolve()
        if path.is_dir():
            return ClassFolder(path, source)
        if path.suffix.lower() == ".jsonl":
            return LineFile(path, source, jsonl=True)
        if path.is_file():
            return LineFile(path, source, jsonl=False)
        raise SourceError(f"text source `{path}` does not exist.")
    if isinstance(data, Sequence) and all(isinstance(t, str) for t in data):
        return Strings(list(data))
    raise SourceError(
        f"cannot read text from a {type(data).__name__}: pass a .txt or .jsonl path, a folder "
        f"of <class>/<file>.txt, or a list of strings."
    )


class _Texts:
    """Samples ``start:stop`` as names, texts and labels (None without labels)."""

    where = ""

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, start: int, stop: int) -> tuple[list[str], list[str], list[int | None]]:
        raise NotImplementedError

    def stamp(self) -> str:
        raise NotImplementedError


class Strings(_Texts):
    def __init__(self, texts: list[str]) -> None:
        self.texts, self.where = texts, "<strings>"

    def __len__(self) -> int:
        return len(self.texts)

    def read(self, start: int, stop: int) -> tuple[list[str], list[str], list[int | None]]:
        return [str(i) for i in range(start, stop)], self.texts[start:stop], [None] * (stop - start)

    def stamp(self) -> str:
        return xxhash.xxh3_64_hexdigest("\0".join(self.texts).encode())


class LineFile(_Texts):
    """A ``.txt`` or ``.jsonl`` file: each non-empty line a sample, named by its line number."""

    def __init__(self, path: Path, source: TextSource, *, jsonl: bool) -> None:
        self.path, self.where, self.jsonl, self.source = path, str(path), jsonl, source
        data = _mapped(path)
        ends = np.flatnonzero(data == 10)
        if not len(data) or data[-1] != 10:
            ends = np.append(ends, len(data))
        starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
        stops = ends - ((ends > starts) & (data[np.maximum(ends - 1, 0)] == 13))  # drop a \r
        kept = stops > starts
        source.empty_lines = int((~kept).sum())
        self.starts, self.stops = starts[kept], stops[kept].astype(np.int64)
        self.lines = np.flatnonzero(kept) + 1
        if not len(self.starts):
            raise SourceError(f"text file `{path}` holds no non-empty line.")
        source.invalid_lines = self._invalid_lines()
        self.labels: list[int | None] = self._labels() if jsonl else [None] * len(self.starts)

    def __len__(self) -> int:
        return len(self.starts)

    def read(self, start: int, stop: int) -> tuple[list[str], list[str], list[int | None]]:
        names, texts = self._texts(start, stop)
        if self.jsonl:
            key = self.source.text_key
            pairs = zip(texts, names, strict=True)
            texts = [_text_of(_object(t, n), key, n) for t, n in pairs]
        return names, texts, self.labels[start:stop]

    def stamp(self) -> str:
        stat = os.stat(self.path)
        return f"{self.path}:{stat.st_size}:{stat.st_mtime_ns}"

    def _texts(self, start: int, stop: int) -> tuple[list[str], list[str]]:
        names = [f"line {n} of {self.path.name}" for n in self.lines[start:stop].tolist()]
        pairs = zip(self._raw(start, stop), names, strict=True)
        return names, [_decode(raw, name, self.source.errors) for raw, name in pairs]

    def _raw(self, start: int, stop: int) -> list[bytes]:
        """Lines ``start:stop`` as bytes, from one read of the span they cover."""
        if start >= stop:
            return []
        base = int(self.starts[start])
        with open(self.path, "rb") as handle:
            handle.seek(base)
            block = handle.read(int(self.stops[stop - 1]) - base)
        spans = zip(self.starts[start:stop].tolist(), self.stops[start:stop].tolist(), strict=True)
        return [block[a - base : b - base] for a, b in spans]

    def _blocks(self) -> Iterator[tuple[int, int]]:
        """Ranges of lines of about ``_SCAN_BYTES``, for passes over the whole file."""
        bounds = np.searchsorted(self.starts, np.arange(0, self.stops[-1], _SCAN_BYTES))
        edges = [*np.unique(bounds).tolist(), len(self.starts)]
        return zip(edges[:-1], edges[1:], strict=True)

    def _invalid_lines(self) -> int:
        """Lines that are not UTF-8 (a block decoded at once; line by line if it fails)."""
        bad: list[int] = []
        for start, stop in self._blocks():
            raws = self._raw(start, stop)
            if not _valid(b"\n".join(raws)):
                bad += [start + i for i, raw in enumerate(raws) if not _valid(raw)]
        if bad and self.source.errors == "strict":
            raise SourceError(
                f"line {self.lines[bad[0]]} of `{self.path}` is not valid UTF-8; pass "
                f"errors='replace' to read it with U+FFFD replacements ({len(bad)} such lines)."
            )
        return len(bad)

    def _labels(self) -> list[int | None]:
        """Labels of every line: ints as they are, strings as indices of their sorted names."""
        key, raw, names = self.source.label_key, list[Any](), list[str]()
        for start, stop in self._blocks():
            block_names, texts = self._texts(start, stop)
            raw += [_object(t, n).get(key) for t, n in zip(texts, block_names, strict=True)]
            names += block_names
        if all(v is None for v in raw):
            return [None] * len(raw)
        if all(isinstance(v, str) for v in raw):
            classes = sorted(set(raw))
            self.source.categories = {"label": tuple(classes)}
            return _indexed(raw, classes)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            return list(raw)
        bad = next(n for n, v in zip(names, raw, strict=True) if type(v) not in (int, str))
        raise SourceError(
            f"`{key}` of {bad} is missing or neither an int nor a string; every line needs a "
            f"label of one kind, or none has one."
        )


def _indexed(values: list[Any], classes: list[str]) -> list[int | None]:
    index = {c: i for i, c in enumerate(classes)}
    return [index[v] for v in values]


class ClassFolder(_Texts):
    """``root/<class>/<file>.txt``: each file a sample, labelled by its folder's sorted index."""

    def __init__(self, root: Path, source: TextSource) -> None:
        self.root, self.where, self.source = root, str(root), source
        classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.files = [(f, i) for i, c in enumerate(classes) for f in sorted(c.glob("*.txt"))]
        source.categories = {"label": tuple(c.name for c in classes)}
        if not self.files:
            raise SourceError(f"text folder `{root}` holds no `<class>/<file>.txt`.")

    def __len__(self) -> int:
        return len(self.files)

    def read(self, start: int, stop: int) -> tuple[list[str], list[str], list[int | None]]:
        chosen = self.files[start:stop]
        names = [str(f.relative_to(self.root)) for f, _ in chosen]
        pairs = zip(chosen, names, strict=True)
        texts = [_decode(f.read_bytes(), n, self.source.errors) for (f, _), n in pairs]
        return names, texts, [label for _, label in chosen]

    def stamp(self) -> str:
        return repr([(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f, _ in self.files])


def _mapped(path: Path) -> np.ndarray:
    """The file's bytes, memory-mapped (nothing is read into private memory)."""
    size = path.stat().st_size
    if not size:
        return np.zeros(0, np.uint8)
    with open(path, "rb") as handle:
        return np.frombuffer(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)


def _valid(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode(raw: bytes, name: str, errors: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if errors == "strict":
            raise SourceError(f"{name} is not valid UTF-8 ({exc}); pass errors='replace'.") from exc
        return raw.decode("utf-8", "replace")


def _object(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{name} is not a JSON object ({exc}).") from exc
    if not isinstance(value, dict):
        raise SourceError(f"{name} is a JSON {type(value).__name__}, not an object.")
    return value


def _text_of(value: dict[str, Any], key: str, name: str) -> str:
    text = value.get(key)
    if not isinstance(text, str):
        raise SourceError(
            f"{name} has no string `{key}` (its keys: {sorted(value)}); pass `text_key=`."
        )
    return text
