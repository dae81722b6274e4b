"""Answers of ``GET /status`` and ``GET /system``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sdrest.api.schemas.base import ResponseModel


class QueueCounts(ResponseModel):
    queued: int
    running: int


class WorkerView(ResponseModel):
    pid: int | None
    alive: bool
    starts: int = Field(description="Worker processes started so far.")
    crashes: int
    last_crash: dict[str, Any] | None


class WorkerEntryView(ResponseModel):
    """One generation worker registered in the job store (this server's, or another node's)."""

    id: str = Field(description="The worker's id (--worker-id; with --workers, one per worker).")
    host: str | None
    device: str | None = Field(description="Its GPU index (--gpus); null: the default device.")
    local: bool = Field(description="True for this server's own workers.")
    pid: int | None = Field(description="Its worker process (null while none runs).")
    alive: bool = Field(description="Its heartbeat is younger than --lease-seconds.")
    heartbeat_age: float = Field(description="Seconds since its last heartbeat.")
    running_job: str | None = Field(description="The job it runs (null when idle or hidden).")
    running_hidden: bool = Field(description="True when it runs another user's job.")
    loaded_model: str | None
    resident_models: list[str | None]
    starts: int
    crashes: int


class Capabilities(ResponseModel):
    samplers: list[str]
    schedulers: list[str]
    hires_upscalers: list[str]


class ResidentMemory(ResponseModel):
    ram_bytes: int = Field(description="Bytes of weights in RAM, as the library counts them.")
    vram_bytes: int = Field(description="Bytes of weights in GPU memory.")


class ResidentModelView(ResponseModel):
    name: str | None
    options: dict[str, Any]
    load_seconds: float | None = Field(description="How long loading it took.")
    memory: ResidentMemory | None = Field(description="Its weights' memory (null if the library did not say).")


class ModelMemoryView(ResponseModel):
    budget_bytes: int | None = Field(
        description="--max-model-memory-mb in bytes: the weight memory the resident "
        "models may take together (null: no budget)."
    )
    resident_bytes: int = Field(description="The weight memory of the resident models now (RAM + VRAM).")


class StatusView(ResponseModel):
    """The server, its queue and its worker."""

    status: Literal["ok"]
    version: str
    native_version: str | None
    uptime: float = Field(description="Seconds since the server started.")
    queue: QueueCounts
    running_job: str | None = Field(description="The running job's id (null when idle or hidden).")
    running_hidden: bool | None = Field(None, description="True when another user's job runs (its id is not shown).")
    loaded_model: str | None
    loaded_model_options: dict[str, Any]
    resident_models: list[ResidentModelView] = Field(
        description="Models the worker holds loaded (at most --max-loaded-models), least recently used first."
    )
    model_memory: ModelMemoryView
    default_model: str | None
    worker: WorkerView
    workers: list[WorkerEntryView] = Field(
        description="Every generation worker registered in the job store (with PostgreSQL: on every node), by id."
    )
    jobs: dict[str, int] = Field(description="Stored jobs per status.")
    counters: dict[str, int]
    capabilities: Capabilities = Field(description="The names sampler, scheduler and hires.upscaler accept.")


class CpuView(ResponseModel):
    count: int | None
    physical_cores: int | None
    load_average: list[float] | None
    features: str | dict[str, Any] | None


class MemoryView(ResponseModel):
    total: int | None
    available: int | None


class GpuMemory(ResponseModel):
    total: int = Field(description="Bytes.")
    free: int
    used: int


class GpuDevice(ResponseModel):
    index: int
    name: str
    memory: GpuMemory


class CudaView(ResponseModel):
    build: str | None = Field(description="The CUDA toolkit the library was compiled with, e.g. 13.5.37.")
    toolkit: str | None = Field(
        description="Where that toolkit came from: system, wheels (NVIDIA's CUDA "
        "wheels) or user (a compiler given at build time)."
    )
    runtime: str | None = Field(description="The CUDA runtime the worker loaded (null before it starts).")
    driver: str | None = Field(description="The newest CUDA version the installed driver supports.")


class GpuView(ResponseModel):
    present: bool = Field(description="Whether the server has a GPU it can use.")
    backends: list[str] = Field(description="GPU backends built into the native library (none: a CPU build).")
    devices: list[GpuDevice] = Field(description="GPUs found (through NVML on CUDA builds).")
    driver: str | None = Field(description="The GPU driver's version, where known.")
    message: str | None = Field(description="Why no GPU is listed, in plain words.")
    cuda: CudaView | None = Field(None, description="CUDA builds only: the CUDA versions involved.")


class NativeView(ResponseModel):
    version: str | None
    commit: str | None
    source: str | None


class DiskView(ResponseModel):
    folder: Literal["output_dir"] = Field(description="The folder whose disk is measured: the output folder.")
    total: int
    used: int
    free: int


class SystemView(ResponseModel):
    """The machine and the native library (admins)."""

    platform: str
    python: str
    cpu: CpuView
    memory: MemoryView
    gpu: GpuView
    backends: list[str]
    native: NativeView
    disk: DiskView
