"""Which model a job runs with, and what the worker is told to load.

The model that jobs without a "model" get is the one the worker loaded last, else ``--model``.
Request threads read it (the default model) while the supervisor thread changes it, so
:class:`ModelChoice` keeps it under a lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from sdrest.jobs import Job
from sdrest.jobs.params import public_model_options
from sdrest.models.paths import ModelNotFoundError

log = logging.getLogger("sdrest.supervisor")


class ModelChoice:
    """The current model and the load specs built from the model library."""

    def __init__(self, library: Any, fallback: str | None) -> None:
        self.library = library
        self._fallback = fallback  # --model
        self._lock = threading.Lock()
        self._current_model: str | None = fallback
        self._current_spec: dict[str, Any] | None = None  # what the worker last loaded
        self._preload_failed: str | None = None  # never retry a model that crashed or failed to load

    @property
    def current(self) -> str | None:
        """What a request without ``model`` gets (None: nothing loaded and no --model)."""
        with self._lock:
            return self._current_model

    def loaded(self, message: dict[str, Any]) -> None:
        """The worker says what it has loaded now (after a failed load: the previous model)."""
        with self._lock:
            self._current_spec = (
                {"name": message["name"], "path": message.get("path"), "options": message.get("options") or {}}
                if message["name"] is not None
                else None
            )
            # After an unload, requests without "model" fall back to --model (or get 409).
            self._current_model = message["name"] if message["name"] is not None else self._fallback

    def preload_spec(self) -> dict[str, Any] | None:
        """What a fresh worker loads before the next job needs it; None if nothing (or it failed before)."""
        name = self.current
        if name is None or name == self._preload_failed:
            return None
        try:
            return self.spec(name, str(self.library.find(_checkpoint_type(), name, "model").path), {})
        except ModelNotFoundError as exc:
            self._preload_failed = name
            if self._is_preset(name):  # a model preset (--model RECIPE): its jobs name its files
                log.info("model %s is a preset: the first job that uses it loads it", name)
            else:
                log.error("cannot preload %s: %s", name, exc)
            return None

    def _is_preset(self, name: str) -> bool:
        from sdrest.models.types import ModelType

        try:
            self.library.find(ModelType.PRESETS, name, "model")
            return True
        except (ModelNotFoundError, ValueError):
            return False

    def preload_failed(self, name: str) -> None:
        """Loading ``name`` crashed or failed: a fresh worker does not try it again."""
        self._preload_failed = name

    def for_job(self, job: Job) -> dict[str, Any] | None:
        """The model a job needs; jobs naming nothing get exactly what is loaded."""
        params = job.params
        if params.get("mode") in ("upscale", "unload", "convert"):
            return None
        options = params.get("model_options") or {}
        if params.get("model_path"):
            return self.spec(params["model"], params["model_path"], options)
        if "diffusion_model_path" in options:
            name = PurePath(options["diffusion_model_path"]).stem
            return self.spec(name, None, options)
        with self._lock:
            current, loaded = self._current_spec, self._current_model
        if current is not None and not options:
            return current
        if current is not None:
            return self.spec(current["name"], current["path"], options)
        if loaded is None:
            raise ModelNotFoundError("model", "", "model: no model is loaded and none was requested")
        return self.spec(loaded, str(self.library.find(_checkpoint_type(), loaded, "model").path), options)

    def spec(self, name: str, path: str | None, options: dict[str, Any]) -> dict[str, Any]:
        """What the worker loads: the model, its components and options, and every embedding."""
        from sdrest.models.types import ModelType

        embeddings = [
            {"name": PurePath(e.name).name, "path": str(e.path)} for e in self.library.entries(ModelType.EMBEDDING)
        ]
        extra = {"embeddings": embeddings} if embeddings else {}
        return {"name": name, "path": path, "options": {**options, **extra}}


def public_resident(entry: dict[str, Any]) -> dict[str, Any]:
    """A resident model as the status shows it: name, options, load time and weight memory."""
    return {
        "name": entry.get("name"),
        "options": public_model_options(entry.get("options") or {}),
        "load_seconds": entry.get("load_seconds"),
        "memory": entry.get("memory"),
    }


def resident_files(entries: Iterable[dict[str, Any]]) -> frozenset[str]:
    """The model files of the worker's resident models (a job for one of them may go first)."""
    return frozenset(
        filter(
            None, (entry.get("path") or (entry.get("options") or {}).get("diffusion_model_path") for entry in entries)
        )
    )


def _checkpoint_type() -> Any:
    from sdrest.models.types import ModelType

    return ModelType.CHECKPOINT
