"""Test-only native-crash injection for the servers that tests start (never shipped).

``tests/server_helpers.py`` puts this folder on ``PYTHONPATH`` of the ``sdrest serve`` it
starts, so Python imports this module at start-up in the server and in its spawned worker
process. In the worker, once ``sdrest.worker.runner`` is imported, :meth:`Runner.run` is
wrapped: a job whose prompt is ``sdrest-test-crash:<how>`` dies the way a native fault kills the
worker (``abort``: SIGABRT, ``segfault``: SIGSEGV, ``exit``: exit status 3). With
``sdrest-test-crash:after-write:<how>`` the job runs and writes its images first, then the worker
dies before it can report them; ``after-write:stay`` instead keeps the worker waiting until its
server is gone (for a test that kills the server at that moment). A job whose prompt is
``sdrest-test-hold:<path>`` runs normally, but only once the file ``<path>`` exists: a test holds
the worker busy with it for exactly as long as it needs a queue behind a running job. A job whose
prompt is ``sdrest-test-hold-written:<path>`` runs and writes its images, but reports them only
once ``<path>`` exists: with background writes the next job runs meanwhile. Product code knows
nothing of it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

CRASH_PREFIX = "sdrest-test-crash:"
HOLD_PREFIX = "sdrest-test-hold:"
HOLD_WRITTEN_PREFIX = "sdrest-test-hold-written:"
AFTER_WRITE = "after-write:"
_TARGET = "sdrest.worker.runner"


def _crash(how: str) -> None:
    import ctypes
    import logging
    import os
    import time

    logging.getLogger("sdrest.worker").warning("test hook: simulating %s", how)
    if how == "abort":
        os.abort()
    if how == "segfault":
        ctypes.string_at(0)
    if how == "exit":
        os._exit(3)
    if how == "stay":
        parent = os.getppid()
        while os.getppid() == parent:
            time.sleep(0.1)
        os._exit(0)


def _hold(flag: str) -> None:
    """Wait until the test creates ``flag`` (or the server that started this worker is gone)."""
    import os
    import time

    parent = os.getppid()
    while not os.path.exists(flag) and os.getppid() == parent:
        time.sleep(0.02)


def _patch(module: Any) -> None:
    original = module.Runner.run

    def run(self: Any, job: dict[str, Any], model: Any) -> Any:
        prompt = job.get("params", {}).get("prompt") or ""
        if prompt.startswith(HOLD_PREFIX):
            _hold(prompt[len(HOLD_PREFIX) :])
            return original(self, job, model)
        if prompt.startswith(HOLD_WRITTEN_PREFIX):
            finish = original(self, job, model)  # a Finish: what is left once the library is done
            write = finish.write

            def write_then_hold() -> Any:
                written = write()
                _hold(prompt[len(HOLD_WRITTEN_PREFIX) :])
                return written

            finish.write = write_then_hold
            return finish
        if not prompt.startswith(CRASH_PREFIX):
            return original(self, job, model)
        how = prompt[len(CRASH_PREFIX) :]
        if how.startswith(AFTER_WRITE):
            original(self, job, model)()  # the library's part, then the images written
            how = how[len(AFTER_WRITE) :]
        _crash(how)

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
