"""Turn one job into engine calls, inside the worker process.

The runner owns the native objects (up to ``--max-loaded-models`` resident
:class:`~sdrest.engine.Context` objects, cached ESRGAN upscalers) and the model lifecycle: it
loads only when a job asks for a model or context options none of the resident ones has. It
reports progress as stages (loading, encoding, sampling, decoding, writing) with the time
spent in each. :meth:`Runner.cancel` (the worker's pipe-reader thread) stops the running job
inside the library, keeping every model loaded.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from sdrest import __version__
from sdrest.errors import GenerationCancelled, NativeCallError
from sdrest.infotext import infotext
from sdrest.jobs.params import public_params
from sdrest.outputs import discard_job_outputs, write_image
from sdrest.settings import Settings
from sdrest.worker.mapping import context_params, image_gen_params
from sdrest.worker.process import out_of_memory
from sdrest.worker.resident import Resident, ResidentModels, model_key

T = TypeVar("T")
log = logging.getLogger("sdrest.worker")

Send = Callable[[dict[str, Any]], None]


class StageClock:
    """Times the stages of one job and reports every change."""

    def __init__(self, job_id: str, send: Send) -> None:
        self.job_id = job_id
        self.send = send
        self.timings: dict[str, float] = {}
        self.stage: str | None = None
        self._since = time.perf_counter()

    def enter(self, stage: str, **progress: Any) -> None:
        now = time.perf_counter()
        if self.stage is not None:
            self.timings[self.stage] = round(self.timings.get(self.stage, 0.0) + now - self._since, 4)
        self.stage, self._since = stage, now
        self.send({"type": "progress", "job_id": self.job_id, "stage": stage, **progress})

    def finish(self) -> dict[str, float]:
        if self.stage is not None:
            now = time.perf_counter()
            self.timings[self.stage] = round(self.timings.get(self.stage, 0.0) + now - self._since, 4)
            self.stage = None
        return dict(self.timings)


class PreviewSender:
    """Encodes live previews (PNG) and sends them on a thread of its own: the library's preview
    callback, on the sampling thread, only hands over a frame (already a copy). When encoding is
    slower than the steps, only the latest frame waits; older ones are dropped."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._changed = threading.Condition()
        self._pending: tuple[str, int, Image.Image] | None = None
        self._busy = False
        threading.Thread(target=self._run, name="sdrest-worker-previews", daemon=True).start()

    def offer(self, job_id: str, step: int, image: Image.Image) -> None:
        with self._changed:
            self._pending = (job_id, step, image)
            self._changed.notify_all()

    def flush(self) -> None:
        """Wait until the preview waiting (if any) and the one being encoded are sent."""
        with self._changed:
            self._changed.wait_for(lambda: self._pending is None and not self._busy)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending is not None)
                assert self._pending is not None
                (job_id, step, image), self._pending = self._pending, None
                self._busy = True
            try:
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                self._send({"type": "preview", "job_id": job_id, "step": step, "png": buffer.getvalue()})
            except Exception:  # a lost preview must not stop the next ones
                log.debug("preview not sent", exc_info=True)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()


class Finish:
    """What is left of a job once the library is done with it: its result, and for a generation
    the writing of its images. Calling it finishes the job (on any thread) and returns the
    result with the stage timings. ``deferred``: images are left to write, which the worker's
    writer thread may do while the next job starts (see :mod:`sdrest.worker.process`)."""

    def __init__(
        self, clock: StageClock, result: dict[str, Any], write: Callable[[], list[dict[str, Any]]] | None = None
    ) -> None:
        self.clock = clock
        self.result = result
        self.write = write

    @property
    def deferred(self) -> bool:
        return self.write is not None

    def __call__(self) -> dict[str, Any]:
        result = dict(self.result)
        if self.write is not None:
            result["images"] = self.write()
        result["timings"] = self.clock.finish()
        return result


class Runner:
    """Runs jobs on the native library; lives in the worker process's generation thread."""

    def __init__(self, settings: Settings, send: Send) -> None:
        self.settings = settings
        self.send = send
        self.context: Any = None  # the model in use: the most recently used resident one
        self.context_key: str | None = None
        self.model_name: str | None = None
        self.loaded_spec: dict[str, Any] | None = None
        self.models = ResidentModels(settings.max_loaded_models, settings.model_memory_budget)
        self.upscalers: dict[str, Any] = {}
        self.previews = PreviewSender(send)
        self.model_facts: Any = None  # architecture and hash of the model in use (resolved.py)
        self.default_cfg = 0.0
        # The running job and a cancel asked for it; the pipe-reader thread writes both.
        self._cancel_lock = threading.Lock()
        self._job_id: str | None = None
        self._cancel_mode: str | None = None
        self._upscaling = False  # the upscaler has no cancel call

    # --- model lifecycle ---

    def ensure_model(self, model: dict[str, Any], clock: StageClock | None) -> None:
        """Use ``model`` ({"name", "path", "options"}), loading it unless it is resident.

        Loading first unloads the least recently used models beyond ``--max-loaded-models`` or
        ``--max-model-memory-mb`` (see :mod:`sdrest.worker.resident`); a load that runs out of
        memory unloads the least recently used model and tries again, until none is left. If
        the new model fails to load, the previous one is used again (reloaded if it had to make
        room), so one bad file never leaves the server without its working model.
        """
        key = model_key(model)
        resident = self.models.get(key)
        if resident is not None:
            if key != self.context_key:
                self._use(resident)
                self._announce()
            return
        previous = self.loaded_spec
        self._dropped(self.models.make_room(model))
        if clock is not None:
            clock.enter("loading")
        try:
            self._load_evicting(model, key)
        except Exception:
            if previous is not None:
                back = self.models.get(model_key(previous))
                if back is not None:
                    self._use(back)
                    self._announce()
                else:
                    log.warning("loading %s failed; reloading %s", model["name"], previous["name"])
                    try:
                        self._load(previous, model_key(previous))
                    except Exception as exc:  # noqa: BLE001 - the job's own failure is the one to report
                        log.warning("reloading %s failed too: %s", previous["name"], exc)
            raise
        self._dropped(self.models.trim(keep=key))

    def _load_evicting(self, model: dict[str, Any], key: str) -> None:
        """Load ``model``, unloading least recently used models while it runs out of memory."""
        self._evicting(lambda: self._load(model, key), f"load {model['name']}", keep=key)

    def _evicting_others(self, generate: Callable[[], T]) -> T:
        """Run ``generate`` with the model in use, unloading the other models (least recently
        used first) while the library runs out of memory for its working buffers."""
        if self.context_key is None:
            return generate()
        return self._evicting(generate, f"generate with {self.model_name}", keep=self.context_key)

    def _evicting(self, action: Callable[[], T], what: str, keep: str) -> T:
        """Run ``action``; when the library runs out of memory, unload the least recently used
        resident model other than ``keep`` and try again, until none is left (then the
        out-of-memory error stands)."""
        while True:
            try:
                return action()
            except NativeCallError as exc:
                if not out_of_memory(exc):
                    raise
                entry = self.models.evict_oldest_except(keep)
                if entry is None:
                    raise
                log.warning("not enough memory to %s: unloading %s and trying again", what, entry.spec["name"])
                self._dropped([entry])

    def _dropped(self, evicted: list[Resident]) -> None:
        """``evicted`` were unloaded: stop using the one in use among them, tell the supervisor."""
        if any(entry.key == self.context_key for entry in evicted):
            self._use(None)
        if evicted:
            self._announce()

    def _load(self, model: dict[str, Any], key: str) -> None:
        from sdrest.engine import Context

        started = time.perf_counter()
        context = Context(context_params(model, self.settings.threads))
        entry = Resident(
            key=key, spec=model, context=context, seconds=time.perf_counter() - started, memory=context.memory
        )
        self.models.add(entry)
        self._use(entry)
        self._announce()

    def _use(self, entry: Resident | None) -> None:
        with self._cancel_lock:  # cancel() reads self.context from the pipe-reader thread
            self.context = entry.context if entry is not None else None
        self.context_key = entry.key if entry is not None else None
        self.model_name = entry.spec["name"] if entry is not None else None
        self.loaded_spec = entry.spec if entry is not None else None

    def _announce(self) -> None:
        """Tell the supervisor which model is in use and which ones are resident."""
        spec = self.loaded_spec or {}
        self.send(
            {
                "type": "model",
                "name": self.model_name,
                "path": spec.get("path"),
                "options": spec.get("options") or {},
                "resident": [entry.describe() for entry in self.models.entries()],
            }
        )

    def unload(self) -> None:
        self._use(None)
        self.models.clear()
        self._announce()

    # --- cancelling (the pipe-reader thread) ---

    def cancel(self, job_id: str | None, mode: str = "all") -> bool:
        """Stop ``job_id`` if it is the current job (see :meth:`begin`): inside the library at
        its next sampling step ("all"), or after the image being sampled ("new_latents"). False
        when it cannot be stopped that way (not the current job, or an upscale)."""
        with self._cancel_lock:
            if job_id is None or job_id != self._job_id or self._upscaling:
                return False
            self._cancel_mode = mode
            context = self.context
        if context is not None:
            context.cancel(mode)
        return True

    def _check_cancel(self) -> None:
        """Between the steps of a job: end it here if it was cancelled before the library started."""
        if self._cancel_mode is not None:
            raise GenerationCancelled("cancelled")

    def _rearm_cancel(self) -> None:
        """From the library's callbacks: a cancel that came just before the library cleared its
        flag (which it does when a generation starts) is applied again."""
        mode, context = self._cancel_mode, self.context
        if mode is not None and context is not None:
            context.cancel(mode)

    # --- jobs ---

    def begin(self, job: dict[str, Any]) -> None:
        """(pipe-reader thread) ``job`` arrived: from now until :meth:`end` it may be cancelled."""
        with self._cancel_lock:
            self._job_id, self._cancel_mode = job["id"], None
            self._upscaling = job["params"]["mode"] in ("upscale", "convert")  # no in-place cancel

    def end(self, job_id: str | None) -> None:
        """(main thread) The job's answer went out: a later cancel for it is stale."""
        with self._cancel_lock:
            if job_id == self._job_id:
                self._job_id = self._cancel_mode = None

    def run(self, job: dict[str, Any], model: dict[str, Any] | None) -> Finish:
        """Do the library's part of ``job``; what is left (writing a generation's images) is in
        the returned :class:`Finish`, which needs neither the library nor the models."""
        params = job["params"]
        clock = StageClock(job["id"], self.send)
        if params["mode"] == "upscale":
            result = self._upscale(job, params, clock)
        elif params["mode"] == "unload":
            self.unload()
            result = {"images": [], "model": None}
        elif params["mode"] == "convert":
            from sdrest.worker import convert

            result = convert.convert(params, clock)
        elif params["mode"] == "load":
            if model is None:
                raise LookupError("no model to load")
            self.ensure_model(model, clock)
            result = {"images": [], "model": self.model_name}
        else:
            if model is None:
                raise LookupError("no model is loaded")
            self.ensure_model(model, clock)
            self._check_cancel()
            if params["mode"] != "video":
                return self._generate(job, params, clock)
            from sdrest.worker import video

            result = video.generate(self, job, params, clock)
        return Finish(clock, result)

    def stage_callbacks(
        self, job: dict[str, Any], params: dict[str, Any], clock: StageClock
    ) -> tuple[Callable[[int, str], None], Callable[[int, int, float], None]]:
        """The library's log and progress callbacks of a generation (image or video): they re-arm a
        cancel, move ``clock`` through the stages and report each sampling step."""

        def on_log(_level: int, line: str) -> None:
            self._rearm_cancel()
            # The library's own milestones mark where one stage ends and the next begins.
            if "get_learned_condition completed" in line and clock.stage == "encoding":
                clock.enter("sampling", step=0, steps=int(params.get("steps") or 0))
            elif "sampling completed" in line and clock.stage == "sampling":
                clock.enter("decoding")

        def on_progress(step: int, steps: int, _seconds: float) -> None:
            self._rearm_cancel()
            if step > 0:
                self.send({"type": "progress", "job_id": job["id"], "stage": clock.stage, "step": step, "steps": steps})

        return on_log, on_progress

    def _generate(self, job: dict[str, Any], params: dict[str, Any], clock: StageClock) -> Finish:
        clock.enter("encoding")
        control = None
        if params.get("canny") and params.get("control_image"):
            from sdrest.engine import canny

            control = canny(Image.open(self._input_path(params["control_image"])))
        image_params = image_gen_params(params, lambda path: Image.open(self._input_path(path)), control)
        on_log, on_progress = self.stage_callbacks(job, params, clock)

        def on_preview(step: int, frames: list[Image.Image], _noisy: bool) -> None:
            if frames:
                self.previews.offer(job["id"], step, frames[0])

        preview = self.settings.preview
        self._check_cancel()
        try:
            generation = self._evicting_others(
                lambda: self.context.generate(
                    image_params,
                    on_progress=on_progress,
                    on_preview=on_preview if preview != "none" else None,
                    on_log=on_log,
                    preview_mode=preview,
                    preview_interval=self.settings.preview_interval,
                    preview_noisy=bool(params.get("preview_noisy")),
                )
            )
        finally:
            self.previews.flush()  # every preview of the job goes out before its end
        outputs = generation.images
        if params.get("upscale_model_path"):
            clock.enter("upscaling")
            upscaler = self._upscaler(params["upscale_model_path"], params.get("upscale_tile_size"), None)
            for _ in range(params.get("upscale_repeats", 1)):
                outputs = [upscaler.upscale(image) for image in outputs]
        clock.enter("writing")
        resolved = self._resolve(params)  # needs the model: before the next job may change it
        seeds = generation.seeds
        return Finish(
            clock,
            {
                "images": [],
                "seeds": seeds,
                "model": self.model_name,
                "resolved": resolved,
                "warnings": generation.warnings,
            },
            lambda: self._write(job, params, outputs, seeds, resolved),
        )

    def _resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """What applied: the model (with its short hash), sampler, scheduler, CFG, clip skip."""
        from sdrest.engine import library_defaults
        from sdrest.worker.resolved import ModelFacts, resolve

        if self.model_facts is None:
            self.model_facts = ModelFacts(self.settings.data_dir / "hashes.sqlite3")
            self.default_cfg = library_defaults()["sample_params"]["guidance"]["txt_cfg"]
        return resolve(params, self.context, self.loaded_spec or {}, self.model_facts, self.default_cfg)

    def _upscale(self, job: dict[str, Any], params: dict[str, Any], clock: StageClock) -> dict[str, Any]:
        upscaler = self._upscaler(params["upscaler_path"], None, clock)
        clock.enter("sampling")
        source = Image.open(self._input_path(params["image"]))
        image = upscaler.upscale(source, params.get("factor"))
        clock.enter("writing")
        images = self._write(job, params, [image], [0])
        return {"images": images, "seeds": [], "model": params.get("upscaler"), "warnings": []}

    def _upscaler(self, path: str, tile_size: int | None, clock: StageClock | None) -> Any:
        """The ESRGAN upscaler of ``path`` (loaded unless it is the one kept)."""
        from sdrest.engine import Upscaler

        key = f"{path}:{tile_size or ''}"
        upscaler = self.upscalers.get(key)
        if upscaler is None:
            if clock is not None:
                clock.enter("loading")
            upscaler = (
                Upscaler(path, n_threads=self.settings.threads, tile_size=tile_size)
                if tile_size
                else Upscaler(path, n_threads=self.settings.threads)
            )
            self.upscalers = {key: upscaler}  # keep one: upscalers are small, memory is not
        return upscaler

    def _write(
        self,
        job: dict[str, Any],
        params: dict[str, Any],
        images: list[Image.Image],
        seeds: list[int],
        resolved: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        directory = self.settings.outputs_dir / job["id"]
        directory.mkdir(parents=True, exist_ok=True)
        fmt = params.get("output_format") or self.settings.output_format
        try:
            return self._write_all(job, params, images, seeds, directory, fmt, resolved)
        except OSError:
            # A full disk (or any write error) fails the job: leave none of its files behind.
            discard_job_outputs(self.settings.outputs_dir, job["id"])
            raise

    def _write_all(
        self,
        job: dict[str, Any],
        params: dict[str, Any],
        images: list[Image.Image],
        seeds: list[int],
        directory: Path,
        fmt: str,
        resolved: dict[str, Any] | None,
    ) -> list[dict[str, Any]]:
        written = []
        public = public_params(params)
        for index, (image, seed) in enumerate(zip(images, seeds or [0] * len(images), strict=True)):
            text = ""
            if resolved is not None:  # generations; an upscale has no prompt to tell
                text = infotext(
                    {**public, **resolved}, seed=seed, model_name=resolved["model"], model_hash=resolved["model_hash"]
                )
            metadata = {
                "job_id": job["id"],
                "index": index,
                "seed": seed,
                "model": resolved["model"] if resolved else params.get("upscaler"),
                "params": public,
                "resolved": resolved,
                "sdrest_version": __version__,
            }
            path = write_image(
                image,
                directory,
                str(index),
                fmt=fmt,
                quality=params.get("output_quality"),
                infotext=text,
                metadata=metadata,
                embed=params.get("image_metadata", True),
            )
            written.append(
                {
                    "index": index,
                    "file": f"{job['id']}/{path.name}",
                    "seed": seed,
                    "width": image.width,
                    "height": image.height,
                    "format": fmt,
                }
            )
        return written

    def _input_path(self, relative: str) -> Path:
        return self.settings.data_dir / relative
