"""The worker process seen from the server: started with a handshake, stopped politely or killed.

:class:`WorkerHandle` owns the child process, its pipe and the last warning lines it logged (for
a crash report). It knows nothing of jobs or models; the supervisor decides when to start, stop
or kill it and what a crash means for the running job.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

from sdrest.settings import Settings

log = logging.getLogger("sdrest.supervisor")

#: Lines of the worker's log kept for crash reports: warnings and errors of the running job only
#: (debug lines carry prompts and paths, and another job's lines are another user's business).
CRASH_LOG_LINES = 30
CRASH_LOG_LEVEL = logging.WARNING
#: How long a worker may take to start and say it is ready.
START_TIMEOUT = 60.0


class WorkerHandle:
    """One worker process at a time, and the pipe to it."""

    def __init__(self, settings: Settings, device: str | None = None) -> None:
        self.settings = settings
        self.device = device  # the GPU this worker uses (--gpus), None: the default ones
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.log_tail: collections.deque[str] = collections.deque(maxlen=CRASH_LOG_LINES)
        self._mp = multiprocessing.get_context("spawn")  # never fork a threaded server

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def start(self) -> dict[str, Any]:
        """Start a fresh worker and wait for its hello (pid, capabilities), which it returns.

        Raises RuntimeError if the worker dies or stays silent for :data:`START_TIMEOUT` seconds.
        """
        from sdrest.worker import process as worker_process

        self.close()
        parent, child = self._mp.Pipe()
        proc = self._mp.Process(
            target=worker_process.main,
            args=(child, self.settings.to_dict(redact=True), self.device),
            name="sdrest-worker",
            daemon=True,
        )
        proc.start()
        child.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not parent.poll(0.1):
            if not proc.is_alive() or time.monotonic() > deadline:
                proc.kill()
                proc.join(5)
                parent.close()
                tail = " | ".join(list(self.log_tail)[-3:])
                raise RuntimeError(f"the generation worker did not start ({describe_exit(proc.exitcode)}) {tail}")
        try:
            hello: dict[str, Any] = parent.recv()
        except (EOFError, OSError):
            proc.kill()
            raise RuntimeError("the generation worker died while starting") from None
        self.process, self.conn = proc, parent
        log.info("generation worker started (pid %s)", hello.get("pid"))
        return hello

    def stop(self, kill: bool = False) -> bool:
        """Shut the worker down (``kill``: at once); False if there was none."""
        process, conn = self.process, self.conn
        if process is None:
            return False
        if not kill and conn is not None and process.is_alive():
            try:
                conn.send({"op": "shutdown"})
            except (OSError, ValueError):
                pass
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)
        self.close()
        return True

    def exit_code(self) -> int | None:
        """The exit code of a worker that is ending (None: unknown), after waiting a little for it."""
        process = self.process
        if process is not None:
            process.join(5)
        return process.exitcode if process is not None else None

    def close(self) -> None:
        """Forget the process and close our end of the pipe."""
        if self.conn is not None:
            self.conn.close()
        self.process, self.conn = None, None


def crash_error(code: int | None, lines: list[str]) -> dict[str, Any]:
    """The error of a job whose worker died with exit ``code``, with the worker's last ``lines``."""
    cause = describe_exit(code)
    error: dict[str, Any] = {
        "code": "worker_crashed",
        "message": f"the generation worker died: {cause}",
        "exit_code": code,
        "log": lines,
    }
    if code is not None and code < 0:
        error["signal"] = signal.Signals(-code).name if -code in signal.valid_signals() else -code
    return error


def describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown exit"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
