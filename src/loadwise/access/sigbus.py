"""A shard truncated under a memory mapping: an ``IntegrityError`` naming it, not a dead process.

Reading a mapped page beyond the end of a file that shrank after it was mapped raises
SIGBUS, whose default action kills the process (exit 135). Checking every file's size
before every gather would cost a system call per shard per batch and still leave a window;
instead a SIGBUS handler (Linux) looks up the faulting address among the registered
mappings (``Guard``), maps zero pages over that shard's whole range, notes the shard and
returns: the gather finishes on zeros, and ``check`` (one list test per batch) raises the
``IntegrityError`` before the batch is handed out. Later batches touching the shard raise
before reading (``Guard.truncated``). A fault at any other address is passed on to the
handler that was there before (faulthandler, or the default action).
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
import signal
import sys
from collections.abc import Sequence

from loadwise.access.libc import libc
from loadwise.errors import IntegrityError

#: Linux on 64-bit machines: ``struct sigaction`` and ``siginfo_t`` laid out as below.
SUPPORTED = sys.platform.startswith("linux") and ctypes.sizeof(ctypes.c_void_p) == 8
_SA_SIGINFO = 4
_SI_ADDR = 16  # offset of ``si_addr`` in ``siginfo_t`` (after three ints and padding)
_PROT_READ, _MAP_FIXED = 1, 0x10
_ZEROS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_FIXED


class _SigAction(ctypes.Structure):
    _fields_ = [
        ("sa_sigaction", ctypes.c_void_p),
        ("sa_mask", ctypes.c_ulong * 16),
        ("sa_flags", ctypes.c_int),
        ("sa_restorer", ctypes.c_void_p),
    ]


_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class Guard:
    """One dataset's mapped shards: shard ``k`` is mapped at ``[starts[k], ends[k])``."""

    def __init__(self, location: str, names: Sequence[str]) -> None:
        self.location, self.names = location, tuple(names)
        self._ranges: list[tuple[int, int, int]] = []  # (start, end, shard), sorted
        #: Shards found truncated: their range now reads zeros, and reads must refuse them.
        self.truncated: set[int] = set()

    def add(self, shard: int, start: int, length: int) -> None:
        """Shard ``shard`` is mapped at ``start`` for ``length`` bytes."""
        install()
        end = start + -(-length // mmap.PAGESIZE) * mmap.PAGESIZE
        bisect.insort(self._ranges, (start, end, shard))
        if self not in _GUARDS:
            _GUARDS.append(self)

    def remove(self) -> None:
        """The mappings are gone (closed): faults there are no longer ours."""
        if self in _GUARDS:
            _GUARDS.remove(self)
        self._ranges.clear()

    def refuse(self, shards: Sequence[int]) -> None:
        """``IntegrityError`` if any of ``shards`` was found truncated."""
        bad = sorted(self.truncated.intersection(shards))
        if bad:
            raise self.error(bad[0])

    def error(self, shard: int) -> IntegrityError:
        return IntegrityError(
            f"shard `{self.names[shard]}` in `{self.location}` was truncated while the dataset "
            f"was open (a read past its new end); re-run `loadwise pack`, or `loadwise "
            f"verify {self.location}`."
        )

    def _fault(self, address: int) -> bool:
        """In the handler: zero pages over the shard holding ``address``; False if none does."""
        at = bisect.bisect_right(self._ranges, (address, 1 << 64, 0)) - 1
        if at < 0 or not self._ranges[at][0] <= address < self._ranges[at][1]:
            return False
        start, end, shard = self._ranges[at]
        if libc().mmap(start, end - start, _PROT_READ, _ZEROS, -1, 0) != start:
            return False
        self.truncated.add(shard)
        _FAULTS.append(self.error(shard))
        return True


_GUARDS: list[Guard] = []
_FAULTS: list[IntegrityError] = []  # raised by ``check`` in the thread that made the batch
_previous = _SigAction()


def check() -> None:
    """Raise the error of a shard found truncated during the batch just gathered (one list
    test when nothing happened)."""
    if _FAULTS:
        found = _FAULTS[:]  # every field of the batch may have met the same shard
        _FAULTS.clear()
        raise found[0]


def install() -> None:
    """Make our handler SIGBUS's (again, if faulthandler or another replaced it)."""
    if not SUPPORTED:
        return
    current = _SigAction()
    libc().sigaction(signal.SIGBUS, None, ctypes.byref(current))
    ours = ctypes.cast(_HANDLER, ctypes.c_void_p).value
    if current.sa_sigaction == ours:
        return
    action = _SigAction()
    action.sa_sigaction, action.sa_flags = ours, _SA_SIGINFO
    libc().sigaction(signal.SIGBUS, ctypes.byref(action), ctypes.byref(_previous))


def _on_sigbus(signo: int, info: int, context: int) -> None:
    """The handler: zero pages over a registered shard's range, else hand the fault back."""
    try:
        address = ctypes.c_void_p.from_address(info + _SI_ADDR).value or 0
        if any(guard._fault(address) for guard in list(_GUARDS)):
            return
    except BaseException:  # never return into a fault we did not fix
        pass
    libc().sigaction(signal.SIGBUS, ctypes.byref(_previous), None)  # the fault repeats there


_HANDLER = _HANDLER_TYPE(_on_sigbus)
