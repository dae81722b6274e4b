"""Server status, system information and the OpenAPI document."""

from __future__ import annotations

import os
import platform
import shutil
import time
from typing import Any

from flask import Blueprint, current_app, jsonify

from sdrest import __version__
from sdrest._native.buildinfo import build_info
from sdrest.api.openapi import served_document
from sdrest.api.schemas import Content, api_doc
from sdrest.api.schemas.system import StatusView, SystemView
from sdrest.api.views import API, running_view
from sdrest.auth.web import can_see
from sdrest.gpus import cuda_from_build, gpu_report
from sdrest.services import services
from sdrest.worker.resident import weight_bytes

bp = Blueprint("system", __name__, url_prefix=API)


@bp.get("/status")
@api_doc(responses={200: StatusView})
def status() -> Any:
    """The server: queue, running job, loaded model, worker, counters and capabilities."""
    svc = services()
    worker = svc.supervisor.state()
    running = running_view(worker.running_job, worker.running_owner)
    counts = svc.store.counts()
    caps = svc.supervisor.capabilities
    return jsonify(
        {
            "status": "ok",
            "version": __version__,
            "native_version": caps.get("version"),
            "uptime": round(time.time() - svc.started_at, 3),
            "queue": {"queued": counts.get("queued", 0), "running": counts.get("running", 0)},
            # Another user's running job shows only as busy: its id would open --public-images
            # and the job's events to anyone who can read /status.
            "running_job": running["running"],
            "running_hidden": running["running_hidden"],
            "loaded_model": worker.loaded_model,
            "loaded_model_options": worker.loaded_options,
            "resident_models": worker.resident_models,
            "model_memory": {
                "budget_bytes": svc.settings.model_memory_budget or None,
                "resident_bytes": sum(weight_bytes(entry.get("memory")) or 0 for entry in worker.resident_models),
            },
            "default_model": svc.supervisor.default_model,
            "worker": {
                "pid": worker.pid,
                "alive": worker.alive,
                "starts": worker.starts,
                "crashes": worker.crashes,
                "last_crash": _crash_view(worker.last_crash),
            },
            "workers": _workers_view(svc),
            "jobs": counts,
            "counters": dict(svc.supervisor.counters),
            "capabilities": {k: caps.get(k, []) for k in ("samplers", "schedulers", "hires_upscalers")},
        }
    )


def _workers_view(svc: Any) -> list[dict[str, Any]]:
    """Every worker the store knows, with this server's own seen live rather than as of their
    last heartbeat."""
    now = time.time()
    local = {supervisor.worker_id: state for supervisor, state in svc.supervisor.workers()}
    views = []
    for record in svc.store.workers():
        info = dict(record.info)
        state = local.get(record.id)
        if state is not None:
            info.update(
                running_job=state.running_job,
                running_owner=state.running_owner,
                loaded_model=state.loaded_model,
                resident_models=[entry.get("name") for entry in state.resident_models],
                starts=state.starts,
                crashes=state.crashes,
                worker_pid=state.pid,
            )
        running = running_view(info.get("running_job"), info.get("running_owner"))
        age = max(0.0, now - record.heartbeat_at)
        views.append(
            {
                "id": record.id,
                "host": info.get("host"),
                "device": info.get("device"),
                "local": state is not None,
                "pid": info.get("worker_pid"),
                "alive": age < svc.settings.lease_seconds,
                "heartbeat_age": round(age, 3),
                "running_job": running["running"],
                "running_hidden": running["running_hidden"],
                "loaded_model": info.get("loaded_model"),
                "resident_models": list(info.get("resident_models") or []),
                "starts": int(info.get("starts") or 0),
                "crashes": int(info.get("crashes") or 0),
            }
        )
    return views


def _crash_view(crash: dict[str, Any] | None) -> dict[str, Any] | None:
    """The last worker crash: in full for admins and the crashed job's owner; for everyone
    else only when it happened (its log lines and job id are someone else's business)."""
    if crash is None:
        return None
    if can_see(crash.get("owner")):
        return {k: v for k, v in crash.items() if k != "owner"}
    return {"time": crash["time"], "details_hidden": True}


@bp.get("/system")
@api_doc(responses={200: SystemView})
def system() -> Any:
    """The machine: CPU, memory, GPUs (name and memory through NVML on CUDA builds; on a CPU build
    plainly none), disk, backends and native library version."""
    svc = services()
    caps = svc.supervisor.capabilities
    disk = shutil.disk_usage(svc.settings.outputs_dir if svc.settings.outputs_dir.exists() else svc.settings.data_dir)
    memory = meminfo()
    return jsonify(
        {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu": {
                "count": os.cpu_count(),
                "physical_cores": caps.get("physical_cores"),
                "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                "features": caps.get("system_info"),
            },
            "memory": memory,
            "gpu": gpu_report(
                caps.get("backends", build_info().get("backends", [])),
                cuda_from_build(build_info(), caps.get("cuda_runtime")),
            ),
            "backends": caps.get("backends", build_info().get("backends", [])),
            "native": {
                "version": caps.get("version"),
                "commit": caps.get("commit"),
                "source": build_info().get("sd_cpp_origin"),
            },
            # Which folder, not where it is: no server path reaches a client.
            "disk": {"folder": "output_dir", "total": disk.total, "used": disk.used, "free": disk.free},
        }
    )


@bp.get("/openapi.json")
@api_doc(
    responses={
        200: Content(schema={"type": "object", "required": ["openapi", "info", "paths"]}, description="this document")
    }
)
def openapi() -> Any:
    """This OpenAPI 3.1 document."""
    return jsonify(served_document(current_app))


def meminfo() -> dict[str, int | None]:
    """Total and available RAM in bytes (None where /proc/meminfo does not say)."""
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                values[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return {"total": values.get("MemTotal"), "available": values.get("MemAvailable")}
