"""Turn one job into engine calls, inside the worker process.

The runner owns the native objects (one :class:`~sdrest.engine.Context`, cached ESRGAN
upscalers) and the model lifecycle: it reloads only when a job asks for a different model or
context options. It reports progress as stages (loading, encoding, sampling, decoding,
writing) with the time spent in each.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from sdrest import __version__
from sdrest.jobs.params import public_params
from sdrest.settings import Settings

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


class Runner:
    """Runs jobs on the native library; lives in the worker process's generation thread."""

    def __init__(self, settings: Settings, send: Send) -> None:
        self.settings = settings
        self.send = send
        self.context: Any = None
        self.context_key: tuple[Any, ...] | None = None
        self.model_name: str | None = None
        self.loaded_spec: dict[str, Any] | None = None
        self.upscalers: dict[str, Any] = {}

    # --- model lifecycle ---

    def ensure_model(self, model: dict[str, Any], clock: StageClock | None) -> None:
        """Load ``model`` ({"name", "path", "options"}) unless exactly that is loaded.

        If the new model fails to load, the previous one is loaded again, so one bad file
        never leaves the server without its working model.
        """
        key = json.dumps([model["path"], model.get("options") or {}], sort_keys=True)
        if self.context is not None and key == self.context_key:
            return
        previous = self.loaded_spec
        self.unload()
        if clock is not None:
            clock.enter("loading")
        try:
            self._load(model, key)
        except Exception:
            if previous is not None:
                log.warning("loading %s failed; reloading %s", model["name"], previous["name"])
                self._load(previous, json.dumps([previous["path"], previous.get("options") or {}], sort_keys=True))
            raise

    def _load(self, model: dict[str, Any], key: str) -> None:
        from sdrest.engine import Context, Embedding

        options = dict(model.get("options") or {})
        embeddings = [Embedding(name=e["name"], path=e["path"]) for e in options.pop("embeddings", [])]
        started = time.perf_counter()
        self.context = Context(model_path=model["path"], n_threads=self.settings.threads, vae_decode_only=False,
                               embeddings=embeddings or None, **options)
        self.context_key = key
        self.model_name = model["name"]
        self.loaded_spec = model
        self.send({"type": "model", "name": self.model_name, "path": model["path"],
                   "options": model.get("options") or {}, "seconds": round(time.perf_counter() - started, 3)})

    def unload(self) -> None:
        if self.context is not None:
            self.context.close()
        self.context = self.context_key = self.model_name = self.loaded_spec = None
        self.send({"type": "model", "name": None, "options": {}})

    # --- jobs ---

    def run(self, job: dict[str, Any], model: dict[str, Any] | None) -> dict[str, Any]:
        params = job["params"]
        clock = StageClock(job["id"], self.send)
        if params["mode"] == "upscale":
            result = self._upscale(job, params, clock)
        elif params["mode"] == "unload":
            self.unload()
            result = {"images": [], "model": None}
        elif params["mode"] == "load":
            if model is None:
                raise LookupError("no model to load")
            self.ensure_model(model, clock)
            result = {"images": [], "model": self.model_name}
        else:
            if model is None:
                raise LookupError("no model is loaded")
            self.ensure_model(model, clock)
            result = self._generate(job, params, clock)
        result["timings"] = clock.finish()
        return result

    def _generate(self, job: dict[str, Any], params: dict[str, Any], clock: StageClock) -> dict[str, Any]:
        from sdrest.engine import Lora

        clock.enter("encoding")
        options = _engine_options(params, self._input_path)
        options["loras"] = [Lora(path=lora["path"], multiplier=float(lora["weight"])) for lora in params.get("loras", [])]

        def on_log(_level: int, line: str) -> None:
            # The library's own milestones mark where one stage ends and the next begins.
            if "get_learned_condition completed" in line and clock.stage == "encoding":
                clock.enter("sampling", step=0, steps=int(params.get("steps") or 0))
            elif "sampling completed" in line and clock.stage == "sampling":
                clock.enter("decoding")

        def on_progress(step: int, steps: int, _seconds: float) -> None:
            if step > 0:
                self.send({"type": "progress", "job_id": job["id"], "stage": clock.stage, "step": step,
                           "steps": steps})

        def on_preview(step: int, frames: list[Image.Image], _noisy: bool) -> None:
            if frames:
                buffer = io.BytesIO()
                frames[0].save(buffer, format="PNG")
                self.send({"type": "preview", "job_id": job["id"], "step": step, "png": buffer.getvalue()})

        preview = self.settings.preview
        generation = self.context.generate(
            _image_params(params, options),
            on_progress=on_progress,
            on_preview=on_preview if preview != "none" else None,
            on_log=on_log,
            preview_mode=preview,
            preview_interval=self.settings.preview_interval,
        )
        clock.enter("writing")
        images = self._write(job, params, generation.images, generation.seeds)
        return {"images": images, "seeds": generation.seeds, "model": self.model_name,
                "warnings": generation.warnings}

    def _upscale(self, job: dict[str, Any], params: dict[str, Any], clock: StageClock) -> dict[str, Any]:
        from sdrest.engine import Upscaler

        path = params["upscaler_path"]
        upscaler = self.upscalers.get(path)
        if upscaler is None:
            clock.enter("loading")
            upscaler = Upscaler(path, n_threads=self.settings.threads)
            self.upscalers = {path: upscaler}  # keep one: upscalers are small, memory is not
        clock.enter("sampling")
        source = Image.open(self._input_path(params["image"]))
        image = upscaler.upscale(source, params.get("factor"))
        clock.enter("writing")
        images = self._write(job, params, [image], [0])
        return {"images": images, "seeds": [], "model": params.get("upscaler"), "warnings": []}

    def _write(self, job: dict[str, Any], params: dict[str, Any], images: list[Image.Image],
               seeds: list[int]) -> list[dict[str, Any]]:
        directory = self.settings.outputs_dir / job["id"]
        directory.mkdir(parents=True, exist_ok=True)
        fmt = params.get("output_format") or self.settings.output_format
        try:
            return self._write_all(job, params, images, seeds, directory, fmt)
        except OSError:
            # A full disk (or any write error) fails the job: leave none of its files behind.
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def _write_all(self, job: dict[str, Any], params: dict[str, Any], images: list[Image.Image],
                   seeds: list[int], directory: Path, fmt: str) -> list[dict[str, Any]]:
        from sdrest.outputs import infotext, write_image

        written = []
        for index, (image, seed) in enumerate(zip(images, seeds or [0] * len(images))):
            public = public_params(params)
            text = infotext(public, seed=seed, model_name=self.model_name) if params["mode"] != "upscale" else ""
            metadata = {"job_id": job["id"], "index": index, "seed": seed, "model": self.model_name,
                        "params": public, "sdrest_version": __version__}
            path = write_image(image, directory, str(index), fmt=fmt, quality=params.get("output_quality"),
                               infotext=text, metadata=metadata)
            written.append({"index": index, "file": f"{job['id']}/{path.name}", "seed": seed,
                            "width": image.width, "height": image.height, "format": fmt})
        return written

    def _input_path(self, relative: str) -> Path:
        return self.settings.data_dir / relative


# Request names that map one-to-one onto engine options.
_SIMPLE = ("prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "sampler", "scheduler",
           "seed", "batch_count", "clip_skip", "strength", "control_strength")


def _engine_options(params: dict[str, Any], input_path: Callable[[str], Path]) -> dict[str, Any]:
    options = {key: params[key] for key in _SIMPLE if params.get(key) is not None}
    for key in ("init_image", "mask_image", "control_image"):
        if params.get(key):
            options[key] = Image.open(input_path(params[key]))
    if params.get("ref_images"):
        options["ref_images"] = [Image.open(input_path(p)) for p in params["ref_images"]]
    return options


def _image_params(params: dict[str, Any], options: dict[str, Any]) -> Any:
    from sdrest.engine import (
        GuidanceParams,
        HiresParams,
        SampleParams,
        SlgParams,
        TilingParams,
        image_params,
    )

    built = image_params(**options)
    sample: SampleParams = built.sample_params
    guidance: GuidanceParams = sample.guidance
    if params.get("eta") is not None:
        sample.eta = params["eta"]
    if params.get("flow_shift") is not None:
        sample.flow_shift = params["flow_shift"]
    if params.get("guidance") is not None:
        guidance.distilled_guidance = params["guidance"]
    if params.get("img_cfg_scale") is not None:
        guidance.img_cfg = params["img_cfg_scale"]
    slg = params.get("slg")
    if slg:
        guidance.slg = SlgParams(layers=slg.get("layers"), layer_start=slg.get("start"), layer_end=slg.get("end"),
                                 scale=slg.get("scale"))
    hires = params.get("hires")
    if hires:
        built.hires = HiresParams(enabled=True, upscaler=hires.get("upscaler"), model_path=hires.get("model_path"),
                                  scale=hires.get("scale"), target_width=hires.get("width"),
                                  target_height=hires.get("height"), steps=hires.get("steps"),
                                  denoising_strength=hires.get("denoising_strength"))
    tiling = params.get("vae_tiling")
    if tiling:
        built.vae_tiling_params = TilingParams(enabled=True, tile_size_x=tiling.get("tile_size"),
                                               tile_size_y=tiling.get("tile_size"),
                                               target_overlap=tiling.get("overlap"))
    return built
