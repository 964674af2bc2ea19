"""Why a media value could not be read, as a short reason that reports count by.

A ``MediaError`` is a ``SourceError`` whose message starts with its reason and names the
thing (``"http 404: `http://host/a.jpg` answered 404 Not Found"``), so the reason survives
the trip through ``pack``'s workers and the manifest's ``skipped`` entries, where only the
message travels. ``reason_of`` reads it back; messages from elsewhere (an image file that
does not decode) are sorted by their wording.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from loadwise.errors import SourceError

TIMEOUT = "timeout"
CONNECTION = "connection failed"
TOO_LARGE = "too large"
TOO_MANY_PIXELS = "too many pixels"
NOT_AN_IMAGE = "not an image"
UNDECODABLE_IMAGE = "undecodable image"
UNDECODABLE_AUDIO = "undecodable audio"
REFUSED_SCHEME = "refused scheme"
TOO_MANY_REDIRECTS = "too many redirects"
BAD_URL = "bad url"
UNREADABLE_FILE = "unreadable file"
MISSING = "missing value"
OTHER = "other"
#: Every reason but HTTP statuses, which read ``http <status>`` (``http 404``, ``http 503``).
REASONS = (
    TIMEOUT, CONNECTION, TOO_LARGE, TOO_MANY_PIXELS, NOT_AN_IMAGE, UNDECODABLE_IMAGE,
    UNDECODABLE_AUDIO, REFUSED_SCHEME, TOO_MANY_REDIRECTS, BAD_URL, UNREADABLE_FILE, MISSING,
    OTHER,
)  # fmt: skip
_HTTP = re.compile(r"http \d{3}")
_WHERE = re.compile(r"`([^`]+)`")
#: Wordings of errors raised outside the media modules, and the reason each means.
_WORDINGS = (
    ("cannot decode image", UNDECODABLE_IMAGE),
    ("cannot read image", UNREADABLE_FILE),
    ("is empty (0 bytes)", UNDECODABLE_IMAGE),
)


class MediaError(SourceError):
    """A media value that cannot be fetched or decoded; ``reason`` is one of ``REASONS`` or
    ``http <status>``, ``where`` the URL or file it concerns."""

    def __init__(self, reason: str, where: str, detail: str) -> None:
        super().__init__(f"{reason}: `{where}` {detail}")
        self.reason, self.where = reason, where

    def __reduce__(self) -> tuple[object, ...]:
        """Keep the reason through pickling (exceptions pickle ``args`` only)."""
        return _media_error, (self.reason, self.where, str(self))


def _media_error(reason: str, where: str, message: str) -> MediaError:
    error = MediaError(reason, where, "")
    error.args = (message,)
    return error


def reason_of(message: str) -> tuple[str, str]:
    """The reason and the URL or file named in a failure ``message`` (``""`` if none)."""
    head = message.split(":", 1)[0]
    found = _WHERE.search(message)
    where = found.group(1) if found else ""
    if head in REASONS or _HTTP.fullmatch(head):
        return head, where
    for wording, reason in _WORDINGS:
        if wording in message:
            return reason, where
    return OTHER, where


@dataclass(frozen=True)
class FailureCount:
    """How many items failed for one reason, and the first few URLs or files."""

    reason: str
    count: int
    examples: tuple[str, ...]


def count_failures(messages: Iterable[str], examples: int = 3) -> tuple[FailureCount, ...]:
    """Failures by reason, most frequent first, with the first ``examples`` of each."""
    counts: dict[str, int] = {}
    firsts: dict[str, list[str]] = {}
    for message in messages:
        reason, where = reason_of(message)
        counts[reason] = counts.get(reason, 0) + 1
        seen = firsts.setdefault(reason, [])
        if len(seen) < examples:
            seen.append(where or message)
    ranked = sorted(counts, key=lambda r: (-counts[r], r))
    return tuple(FailureCount(r, counts[r], tuple(firsts[r])) for r in ranked)
