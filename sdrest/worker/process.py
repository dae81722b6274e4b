"""Entry point of the worker process: one generation thread (this process's main thread).

Messages arrive from the supervisor over a pipe; everything the worker has to say (log lines,
progress, previews, results) goes back the same way. Log lines are forwarded as they happen,
so after a crash the supervisor still has the library's last words.

A reader thread takes the supervisor's messages off the pipe: a "cancel" acts at once (the
main thread is busy inside the library), everything else waits its turn for the main thread.

A writer thread writes a generation's images once the library is done with it
(``--background-writes``, on by default): the worker says "released" and the supervisor sends the
next job, whose model load, encoding and sampling run while the images are encoded and written;
"done" follows when they are on disk. PNG encoding and file writes release the GIL, as the
library does, so on a GPU the two overlap fully; on a CPU they share its cores.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import re
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

from sdrest.errors import (
    GenerationCancelled,
    GenerationError,
    ModelLoadError,
    NativeCallError,
    SdrestError,
)
from sdrest.models.paths import ModelNotFoundError
from sdrest.settings import Settings


class _PipeLogHandler(logging.Handler):
    """Forward log records to the supervisor (the worker has no log file of its own)."""

    def __init__(self, send: Any) -> None:
        super().__init__(logging.DEBUG)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send({"type": "log", "level": record.levelno, "name": record.name, "message": record.getMessage()})
        except (OSError, ValueError):
            pass  # the supervisor is gone; nothing left to tell


# How the library (ggml) says an allocation failed, on a GPU (cudaMalloc's "out of memory") or in
# host memory: its buffer, graph and parameter allocators' error lines.
_OUT_OF_MEMORY = re.compile(
    r"out of memory|failed to allocate (the compute buffer|(\S+ )?buffer of size|\s*[\d.]+ MB)"
    r"|alloc (compute buffer|(partial )?(runtime )?params backend buffer) failed|buffer allocation failed"
)


def out_of_memory(exc: BaseException) -> bool:
    """Whether the library failed for want of memory (its own log lines say so)."""
    return isinstance(exc, NativeCallError) and any(_OUT_OF_MEMORY.search(line) for line in exc.log_lines)


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The job error for an exception raised while running a job."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # Not the job's fault and not a bug: say so plainly (the path is the server's business).
        return {"code": "disk_full", "message": "no space left on the output disk: the image could not be saved"}
    if isinstance(exc, GenerationCancelled):
        return {"code": "cancelled", "message": "the job was cancelled"}
    if isinstance(exc, NativeCallError) and out_of_memory(exc):
        return {
            "code": "out_of_memory",
            "message": "not enough memory for this request (the library could not allocate its buffers): "
            "use a smaller size or batch, or a smaller model",
            "log": list(exc.log_lines)[-20:],
        }
    if isinstance(exc, ModelLoadError):
        code = "model_load_failed"
    elif isinstance(exc, GenerationError):
        code = "generation_failed"
    elif isinstance(exc, (ModelNotFoundError, FileNotFoundError, LookupError)):
        code = "not_found"
    elif isinstance(exc, (ValueError, SdrestError)):
        code = "invalid_parameters"
    else:
        code = "internal_error"
    message = str(exc) if code != "internal_error" else f"{type(exc).__name__}: {exc}"
    payload: dict[str, Any] = {"code": code, "message": message}
    if isinstance(exc, NativeCallError):
        payload["log"] = list(exc.log_lines)[-20:]
    return payload


def capabilities() -> dict[str, Any]:
    """What the library offers, for the server to validate requests without loading it."""
    from sdrest._native import build_info, load_library
    from sdrest._native.cudart import runtime_version
    from sdrest.engine.enums import enum_names

    native = load_library()
    lib = native.lib
    return {
        "samplers": list(enum_names(lib, "enum sample_method_t")),
        "schedulers": list(enum_names(lib, "enum scheduler_t")),
        "hires_upscalers": list(enum_names(lib, "enum sd_hires_upscaler_t")),
        "weight_types": list(enum_names(lib, "enum sd_type_t")),
        "version": native.version,
        "commit": native.commit,
        "system_info": native.system_info,
        "physical_cores": int(lib.sd_get_num_physical_cores()),
        "backends": build_info().get("backends", []),
        "cuda_runtime": runtime_version(),  # the CUDA runtime a CUDA build loaded (else None)
    }


class _Writer:
    """Finishes jobs (writes their images) on a thread of its own, one at a time, in order.

    At most one job waits behind the one being written: :meth:`put` blocks beyond that, so a
    slow disk holds the next generation back instead of piling up images in memory."""

    def __init__(self, send: Any) -> None:
        self._send = send
        self._jobs: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="sdrest-worker-writer", daemon=True)
        self._thread.start()

    def put(self, job_id: str, finish: Any) -> None:
        self._jobs.put((job_id, finish))

    def close(self) -> None:
        """Write what is queued, then stop (before the worker exits: no image is cut off)."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job_id, finish = item
            try:
                _answer(self._send, job_id, "run", finish)
            except (OSError, ValueError):
                pass  # the pipe is closed (the supervisor is gone): write the rest, tell no one


def _answer(send: Any, job_id: str | None, op: str | None, finish: Any) -> None:
    """Finish a job and send its result, or its error."""
    try:
        send({"type": "done", "job_id": job_id, "result": finish()})
    except Exception as exc:  # noqa: BLE001 - every failure is reported, the worker goes on
        _report(send, job_id, op, exc)


def _report(send: Any, job_id: str | None, op: str | None, exc: BaseException) -> None:
    logging.getLogger("sdrest.worker").debug("job failed:\n%s", traceback.format_exc())
    send({"type": "error", "job_id": job_id, "op": op, "error": error_payload(exc)})


def main(conn: Connection, settings_values: dict[str, Any], device: str | None = None) -> None:
    """Serve run/load/unload requests until told to stop or the pipe closes; on GPU ``device``
    (an index, as ``--gpus`` gives it) if one is given."""
    if device is not None:
        # Before the library loads: the backends enumerate their devices once, at start.
        os.environ["CUDA_VISIBLE_DEVICES"] = device
        os.environ["GGML_VK_VISIBLE_DEVICES"] = device
    from sdrest.worker.runner import Runner

    sending = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        with sending:  # two threads write to the pipe: one whole message at a time
            conn.send(message)

    settings = Settings.from_mapping(settings_values)
    root = logging.getLogger()
    root.handlers[:] = [_PipeLogHandler(send)]
    root.setLevel(logging.DEBUG)
    runner = Runner(settings, send)
    try:
        caps = capabilities()
    except Exception as exc:  # noqa: BLE001 - tell the supervisor why, then stop
        logging.getLogger("sdrest.worker").error("cannot start: %s", exc)
        raise SystemExit(2) from None
    send({"type": "ready", "pid": os.getpid(), "capabilities": caps})
    inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
    threading.Thread(
        target=_read_pipe, args=(conn, runner, send, inbox), name="sdrest-worker-pipe", daemon=True
    ).start()
    writer = _Writer(send) if settings.background_writes else None
    try:
        _serve(inbox, runner, send, writer)
    finally:
        if writer is not None:
            writer.close()


def _serve(inbox: queue.Queue[dict[str, Any] | None], runner: Any, send: Any, writer: _Writer | None) -> None:
    """The main thread: run each request from the supervisor in turn."""
    while True:
        message = inbox.get()
        if message is None:
            return
        op = message.get("op")
        if op == "shutdown":
            return
        job_id = message.get("job", {}).get("id")
        try:
            if op == "run":
                finish = runner.run(message["job"], message.get("model"))
                if writer is not None and finish.deferred:
                    # The library is free: the supervisor may send the next job now. "released"
                    # goes out before the writer can answer "done", so it always comes first.
                    send({"type": "released", "job_id": job_id})
                    writer.put(job_id, finish)
                else:
                    _answer(send, job_id, op, finish)
            elif op == "load":
                runner.ensure_model(message["model"], None)
                send({"type": "loaded", "name": runner.model_name})
            elif op == "unload":
                runner.unload()
                send({"type": "loaded", "name": None})
        except Exception as exc:  # noqa: BLE001 - every failure is reported, the worker goes on
            _report(send, job_id, op, exc)
        finally:
            runner.end(job_id)


def _read_pipe(conn: Connection, runner: Any, send: Any, inbox: queue.Queue[dict[str, Any] | None]) -> None:
    """Read the supervisor's messages; None in ``inbox`` means the pipe closed."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            inbox.put(None)
            return
        if message.get("op") == "cancel":
            if not runner.cancel(message.get("job_id"), message.get("mode") or "all"):
                # Nothing the library can stop (an upscale, or the job already ended): say so,
                # and the supervisor decides (it kills the worker only if the job still runs).
                send({"type": "cancel_refused", "job_id": message.get("job_id")})
            continue
        if message.get("op") == "run":
            runner.begin(message["job"])  # before it waits its turn: a cancel may come at once
        inbox.put(message)
