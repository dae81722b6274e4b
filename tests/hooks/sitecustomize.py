"""Test-only native-crash injection for the servers that tests start (never shipped).

``tests/server_helpers.py`` puts this folder on ``PYTHONPATH`` of the ``sdrest serve`` it
starts, so Python imports this module at start-up in the server and in its spawned worker
process. In the worker, once ``sdrest.worker.runner`` is imported, :meth:`Runner.run` is
wrapped: a job whose prompt is ``sdrest-test-crash:<how>`` dies the way a native fault kills the
worker (``abort``: SIGABRT, ``segfault``: SIGSEGV, ``exit``: exit status 3). Product code knows
nothing of it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

CRASH_PREFIX = "sdrest-test-crash:"
_TARGET = "sdrest.worker.runner"


def _crash(how: str) -> None:
    import ctypes
    import logging
    import os

    logging.getLogger("sdrest.worker").warning("test hook: simulating %s", how)
    if how == "abort":
        os.abort()
    if how == "segfault":
        ctypes.string_at(0)
    if how == "exit":
        os._exit(3)


def _patch(module: Any) -> None:
    original = module.Runner.run

    def run(self: Any, job: dict[str, Any], model: Any) -> Any:
        prompt = job.get("params", {}).get("prompt") or ""
        if prompt.startswith(CRASH_PREFIX):
            _crash(prompt[len(CRASH_PREFIX):])
        return original(self, job, model)

    module.Runner.run = run


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _PatchOnImport())
