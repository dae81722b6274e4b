"""Prometheus metrics of one server, in the official client's text format.

Two kinds of figures, kept apart on purpose:

* **Durations** (histograms) are observed once per finished job, from the store's own events:
  the job store calls :meth:`ServerMetrics.observe` for every event it commits, so no worker or
  view code has to remember to count anything. Stage timings come from the job's ``timings``
  (the worker measures them), model loads from its ``loading`` stage (present only when a model
  was loaded for that job).
* **State** (queue depth, jobs by status, worker health, device memory) is read at scrape time
  by :class:`_StateCollector`, so it is never stale and costs nothing between scrapes.

Every server has its own :class:`~prometheus_client.CollectorRegistry` (no process-wide
default registry), so two apps in one process (tests, a reload) never mix their figures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sdrest.jobs import Event, JobStatus, JobStore

log = logging.getLogger(__name__)

#: The text exposition format's content type (what Prometheus expects from /metrics).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds: from a 64x64 test image to a long batch on a CPU.
DURATION_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
_FINISHED_EVENTS = frozenset({"completed", "failed", "cancelled"})


class ServerMetrics:
    """The metrics of one server: histograms fed by job events, state read at scrape time."""

    def __init__(
        self,
        store: JobStore,
        state: Callable[[], dict[str, Any]],
        devices: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        """``state`` returns the worker's figures (see :class:`_StateCollector`); ``devices``
        the GPUs as :func:`sdrest.gpus.gpu_report` lists them, where the build can ask."""
        self.store = store
        self.registry = CollectorRegistry()
        self.job_seconds = Histogram(
            "sdrest_job_duration_seconds",
            "Run time of finished jobs, from start to finish.",
            ["mode", "model", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.wait_seconds = Histogram(
            "sdrest_job_queue_wait_seconds",
            "Time finished jobs waited in the queue before they started.",
            ["mode"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "sdrest_job_stage_duration_seconds",
            "Time finished jobs spent in each stage (loading, encoding, sampling, decoding, writing).",
            ["stage", "mode", "model"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.load_seconds = Histogram(
            "sdrest_model_load_duration_seconds",
            "Model loads: how long each took (its _count is the number of loads).",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(store, state, devices))
        store.add_listener(self.observe)

    def observe(self, event: Event) -> None:
        """Record a finished job's durations (called by the store for every committed event)."""
        if event.type not in _FINISHED_EVENTS or event.job_id is None:
            return
        try:
            self._observe_job(event)
        except Exception:
            log.exception("metrics: could not record job %s", event.job_id)

    def _observe_job(self, event: Event) -> None:
        job = self.store.get(event.job_id or "")
        if job is None or job.started_at is None or job.finished_at is None:
            return  # cancelled while queued: it never ran
        result = event.data.get("result") or {}
        model = str(result.get("model") or job.params.get("model") or "default")
        self.job_seconds.labels(job.kind, model, event.type).observe(max(0.0, job.finished_at - job.started_at))
        self.wait_seconds.labels(job.kind).observe(max(0.0, job.started_at - job.created_at))
        timings = event.data.get("timings") or {}
        for stage, seconds in timings.items():
            if isinstance(seconds, (int, float)):
                self.stage_seconds.labels(stage, job.kind, model).observe(seconds)
        if isinstance(timings.get("loading"), (int, float)):
            self.load_seconds.labels(model).observe(timings["loading"])

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        self.store.remove_listener(self.observe)


class _StateCollector(Collector):
    """Figures read when Prometheus scrapes: the queue, job counts, the worker and devices."""

    def __init__(
        self, store: JobStore, state: Callable[[], dict[str, Any]], devices: Callable[[], list[dict[str, Any]]] | None
    ) -> None:
        self.store = store
        self.state = state
        self.devices = devices

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("sdrest_queue_depth", "Jobs waiting to run, by priority.", labels=["priority"])
        for priority, count in sorted(self.store.queued_by_priority().items()):
            depth.add_metric([str(priority)], count)
        yield depth

        jobs = GaugeMetricFamily("sdrest_jobs", "Jobs in the store, by status.", labels=["status"])
        for status, count in self.store.counts().items():
            jobs.add_metric([status], count)
        yield jobs

        state = self.state()
        yield GaugeMetricFamily(
            "sdrest_worker_up", "1 while the generation worker process is alive.", value=1 if state["alive"] else 0
        )
        yield CounterMetricFamily("sdrest_worker_starts", "Generation worker processes started.", value=state["starts"])
        yield CounterMetricFamily(
            "sdrest_worker_crashes", "Generation worker processes that died mid-job.", value=state["crashes"]
        )
        yield GaugeMetricFamily(
            "sdrest_resident_models", "Models loaded in the worker.", value=state["resident_models"]
        )
        finished = CounterMetricFamily(
            "sdrest_jobs_finished", "Jobs this server finished, by outcome.", labels=["status"]
        )
        for status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
            finished.add_metric([status.value], state["counters"].get(status.value, 0))
        yield finished
        yield CounterMetricFamily(
            "sdrest_images_generated", "Images this server wrote.", value=state["counters"].get("images", 0)
        )

        devices = self.devices() if self.devices is not None else []
        if devices:
            total = GaugeMetricFamily("sdrest_device_memory_total_bytes", "GPU memory.", labels=["device", "name"])
            free = GaugeMetricFamily("sdrest_device_memory_free_bytes", "Free GPU memory.", labels=["device", "name"])
            for device in devices:
                labels = [str(device["index"]), str(device["name"])]
                total.add_metric(labels, device["memory"]["total"])
                free.add_metric(labels, device["memory"]["free"])
            yield total
            yield free
