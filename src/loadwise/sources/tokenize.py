"""Tokenizers as one interface: a batch of texts in, one int32 array of token ids per text out.

``as_tokenizer`` accepts a Hugging Face ``tokenizers.Tokenizer`` (``encode_batch``: Rust,
parallel), a ``transformers`` tokenizer (called on the whole batch; fast ones run the same
Rust code), any callable ``str -> list[int]`` (called per text, its output checked), or
None: the character-level fallback, one id per Unicode code point (``ord(c)``), or with
``CharTokenizer("byte")`` one per UTF-8 byte (ids 0-255). Each has a ``fingerprint`` that
changes when its output could, so packed text is reused only for the same tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import xxhash

from loadwise.errors import ConfigError, SourceError

#: A text the fingerprint of an opaque callable tokenizer is probed with.
PROBE = "The quick brown fox jumps over the lazy dog. 0123456789 Grüße, 東京, ☃."
_INT32_MAX = 2**31 - 1


class Tokenizer(Protocol):
    """Texts to token ids, and what identifies the mapping."""

    def encode_batch(self, texts: Sequence[str], names: Sequence[str]) -> list[np.ndarray]:
        """One 1-D int32 array per text; ``names`` name the texts in errors."""
        ...

    def fingerprint(self) -> str: ...


class CharTokenizer:
    """One id per Unicode code point (``unit="codepoint"``) or per UTF-8 byte (``"byte"``)."""

    UNITS = ("codepoint", "byte")

    def __init__(self, unit: str = "codepoint") -> None:
        if unit not in self.UNITS:
            raise ConfigError(f"`unit` must be one of {', '.join(self.UNITS)}. Found: {unit!r}.")
        self.unit = unit

    def encode_batch(self, texts: Sequence[str], names: Sequence[str]) -> list[np.ndarray]:
        if self.unit == "byte":
            return [np.frombuffer(t.encode("utf-8"), np.uint8).astype(np.int32) for t in texts]
        return [np.frombuffer(t.encode("utf-32-le"), np.int32).copy() for t in texts]

    def fingerprint(self) -> str:
        return f"char-{self.unit}"


class HFTokenizer:
    """A ``tokenizers.Tokenizer``: the whole batch in one ``encode_batch`` call."""

    def __init__(self, tokenizer: Any, add_special_tokens: bool = True) -> None:
        self.tokenizer, self.add_special_tokens = tokenizer, add_special_tokens

    def encode_batch(self, texts: Sequence[str], names: Sequence[str]) -> list[np.ndarray]:
        encodings = self.tokenizer.encode_batch(
            list(texts), add_special_tokens=self.add_special_tokens
        )
        return [np.asarray(e.ids, np.int32) for e in encodings]

    def fingerprint(self) -> str:
        state = f"{self.tokenizer.to_str()}|{self.add_special_tokens}"
        return "hf-" + xxhash.xxh3_64_hexdigest(state.encode())


class TransformersTokenizer:
    """A ``transformers`` tokenizer, called once per batch (no truncation: ``max_length`` is
    applied afterwards, so what it cuts is counted)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def encode_batch(self, texts: Sequence[str], names: Sequence[str]) -> list[np.ndarray]:
        ids = self.tokenizer(list(texts), truncation=False, padding=False)["input_ids"]
        return [_checked(i, n) for i, n in zip(ids, names, strict=True)]

    def fingerprint(self) -> str:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            state = backend.to_str()
        else:  # a slow (Python) tokenizer: its vocabulary and its output on a probe
            state = repr((sorted(self.tokenizer.get_vocab().items()), self.tokenizer(PROBE)))
        return "transformers-" + xxhash.xxh3_64_hexdigest(state.encode())


class CallableTokenizer:
    """Any ``str -> list[int]`` callable, applied text by text, its output checked."""

    def __init__(self, function: Callable[[str], Any]) -> None:
        self.function = function

    def encode_batch(self, texts: Sequence[str], names: Sequence[str]) -> list[np.ndarray]:
        return [_checked(self.function(t), n) for t, n in zip(texts, names, strict=True)]

    def fingerprint(self) -> str:
        function = self.function
        name = f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"
        probe = _checked(function(PROBE), "the fingerprint probe")
        return "callable-" + xxhash.xxh3_64_hexdigest(name.encode() + probe.tobytes())


def as_tokenizer(tokenizer: Any) -> Tokenizer:
    """The ``Tokenizer`` for what the user passed (see the module's docstring)."""
    if tokenizer is None:
        return CharTokenizer()
    if isinstance(
        tokenizer, CharTokenizer | HFTokenizer | TransformersTokenizer | CallableTokenizer
    ):
        return tokenizer
    module = type(tokenizer).__module__
    if module.startswith("tokenizers") and hasattr(tokenizer, "encode_batch"):
        return HFTokenizer(tokenizer)
    if module.startswith("transformers") and hasattr(tokenizer, "batch_decode"):
        return TransformersTokenizer(tokenizer)
    if callable(tokenizer):
        return CallableTokenizer(tokenizer)
    raise ConfigError(
        f"`tokenizer` must be a callable str -> list[int], a tokenizers.Tokenizer, a "
        f"transformers tokenizer or None (characters). Found: {type(tokenizer).__name__}."
    )


def _checked(ids: Any, name: str) -> np.ndarray:
    """A tokenizer's output as int32 ids, or ``SourceError`` saying what it returned."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence | np.ndarray):
        raise _not_ints(ids, name)
    array = np.asarray(ids)
    if array.size == 0:
        return np.empty(0, np.int32)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise _not_ints(ids, name)
    if array.min() < 0 or array.max() > _INT32_MAX:
        raise SourceError(
            f"the tokenizer returned ids from {array.min()} to {array.max()} for {name}; token "
            f"ids are stored as int32, from 0 to {_INT32_MAX}."
        )
    return array.astype(np.int32)


def _not_ints(ids: Any, name: str) -> SourceError:
    shown = repr(ids)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return SourceError(
        f"the tokenizer returned {shown} ({type(ids).__name__}) for {name}; a tokenizer "
        f"returns a list of ints (token ids) for each text."
    )
