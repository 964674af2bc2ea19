"""Run at interpreter start under ``loadwise watch`` (this folder is put on PYTHONPATH).

Stdlib only, and nothing is imported early: when ``torch.utils.data.dataloader`` is first
imported, ``DataLoader.__iter__`` is wrapped so each epoch is timed by
``loadwise.monitoring.watch_hook`` (imported at the first iteration, when torch is loaded
anyway). Another ``sitecustomize`` further along ``sys.path`` still runs after this one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import os
import sys
from typing import Any

_TARGET = "torch.utils.data.dataloader"
_HERE = os.path.dirname(os.path.abspath(__file__))


def _patch(module: Any) -> None:
    original = module.DataLoader.__iter__

    def __iter__(self: Any) -> Any:
        from loadwise.monitoring.watch_hook import session

        return session().iterate(self, original)

    module.DataLoader.__iter__ = __iter__


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of the DataLoader module to patch it."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _TARGET:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = None if finder is self or find is None else find(name, path, target)
            if spec is not None and spec.loader is not None:

                def exec_and_patch(module: Any, run: Any = spec.loader.exec_module) -> None:
                    run(module)
                    _patch(module)

                spec.loader.exec_module = exec_and_patch
                sys.meta_path.remove(self)
                return spec
        return None


def _chain() -> None:
    """Run the ``sitecustomize`` this one hides, if there is one."""
    ours = sys.modules.pop("sitecustomize", None)
    path = list(sys.path)
    sys.path[:] = [p for p in path if os.path.abspath(p or ".") != _HERE]
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as missing:
        if missing.name != "sitecustomize":
            raise
    finally:
        sys.path[:] = path
        if ours is not None:
            sys.modules["sitecustomize"] = ours


if os.environ.get("LOADWISE_WATCH_DIR"):
    if _TARGET in sys.modules:
        _patch(sys.modules[_TARGET])
    else:
        sys.meta_path.insert(0, _PatchOnImport())
_chain()
