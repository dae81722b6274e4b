"""The AUTOMATIC1111 *infotext*: the parameters of an image as one text, written and read.

What A1111's "PNG Info", civitai and friends read: the prompt, a ``Negative prompt:`` line, then
``Key: value`` pairs (sampler and scheduler under A1111's labels). :func:`infotext` writes it,
:func:`parse_infotext` reads it back the way A1111 does. Where it is stored in image files is
:mod:`sdrest.outputs`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sdrest

__all__ = ["SAMPLER_LABELS", "SCHEDULER_LABELS", "infotext", "parse_infotext", "sampler_label", "scheduler_label"]

#: stable-diffusion.cpp sampler names -> the names A1111 shows in infotexts.
SAMPLER_LABELS: dict[str, str] = {
    "euler_a": "Euler a",
    "euler": "Euler",
    "heun": "Heun",
    "dpm2": "DPM2",
    "dpm++2s_a": "DPM++ 2S a",
    "dpm++2m": "DPM++ 2M",
    "dpm++2mv2": "DPM++ 2M v2",
    "ipndm": "iPNDM",
    "ipndm_v": "iPNDM_v",
    "lcm": "LCM",
    "ddim_trailing": "DDIM",
    "tcd": "TCD",
    "res_multistep": "Res Multistep",
    "res_2s": "Res 2s",
    "er_sde": "ER SDE",
}

#: stable-diffusion.cpp scheduler names -> A1111 "Schedule type" labels.
SCHEDULER_LABELS: dict[str, str] = {
    "discrete": "Discrete",
    "karras": "Karras",
    "exponential": "Exponential",
    "ays": "Align Your Steps",
    "gits": "GITS",
    "sgm_uniform": "SGM Uniform",
    "simple": "Simple",
    "smoothstep": "Smoothstep",
    "kl_optimal": "KL Optimal",
    "lcm": "LCM",
    "bong_tangent": "Bong Tangent",
}

# A1111's own parser (modules/infotext_utils.py), so what it reads we read the same way.
_RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def _number(value: Any) -> str:
    """``7.0`` -> ``"7"``, ``0.75`` -> ``"0.75"`` (A1111 shows whole floats without ``.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _quote(value: Any) -> str:
    """A1111's ``quote``: JSON-quote values that would break the ``k: v, k: v`` line.

    A1111 quotes on ``,``, ``:`` and newlines; sdrest also quotes values containing ``"`` so a
    value that happens to start and end with a quote survives A1111's ``unquote``.
    """
    text = _number(value)
    if any(c in text for c in ',:\n"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _unquote(text: str) -> str:
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else text


def sampler_label(name: Any) -> str | None:
    """The A1111 display name of a library sampler name (unknown names pass through)."""
    if name is None or name == "":
        return None
    return SAMPLER_LABELS.get(str(name).lower(), str(name))


def scheduler_label(name: Any) -> str | None:
    """The A1111 "Schedule type" label of a library scheduler name (unknown ones pass through)."""
    if name is None or name == "":
        return None
    return SCHEDULER_LABELS.get(str(name).lower(), str(name))


def _lora_entries(loras: Any) -> list[tuple[str, Any]]:
    """``loras`` as ``[(name, weight)]``: a ``{name: weight}`` mapping, ``[(name, weight)]`` or
    ``[{"name"|"path": ..., "weight"|"multiplier": ...}]``; paths shorten to their stem."""
    if not loras:
        return []
    items: list[tuple[Any, Any]] = []
    if isinstance(loras, Mapping):
        items = list(loras.items())
    else:
        for entry in loras:
            if isinstance(entry, Mapping):
                name = entry.get("name") or entry.get("path")
                weight = entry.get("weight", entry.get("multiplier", 1.0))
                items.append((name, weight))
            elif isinstance(entry, (list, tuple)) and len(entry) == 2:
                items.append((entry[0], entry[1]))
            else:
                items.append((entry, 1.0))
    result = []
    for name, weight in items:
        if not name:
            continue
        text = str(name)
        if "/" in text or "\\" in text or text.endswith((".safetensors", ".ckpt", ".pt", ".gguf")):
            text = Path(text.replace("\\", "/")).stem
        result.append((text, 1.0 if weight is None else weight))
    return result


def infotext(
    params: Mapping[str, Any], *, seed: int, model_name: str | None = None, model_hash: str | None = None
) -> str:
    """The A1111 infotext of a generation described by sdrest request ``params``.

    Line 1 is the prompt (LoRAs from ``params["loras"]`` appended as ``<lora:name:weight>``
    unless the prompt already names them), then ``Negative prompt: ...`` (left out when empty),
    then ``Steps: 20, Sampler: Euler a, ...`` in A1111's key order. Keys whose value is unset are
    left out, as A1111 does; ``Clip skip`` only appears above 1.
    """
    prompt = str(params.get("prompt") or "")
    for name, weight in _lora_entries(params.get("loras")):
        if f"<lora:{name}:" not in prompt and f"<lora:{name}>" not in prompt:
            prompt = f"{prompt} <lora:{name}:{_number(weight)}>" if prompt else f"<lora:{name}:{_number(weight)}>"
    negative = str(params.get("negative_prompt") or "")

    width, height = params.get("width"), params.get("height")
    hires = params.get("hires") or {}
    if not isinstance(hires, Mapping):
        hires = {}
    hires_on = bool(hires) and bool(hires.get("enabled", True))

    denoise = params.get("strength")
    if denoise is None and hires_on:
        denoise = hires.get("denoising_strength", hires.get("strength"))
    clip_skip = params.get("clip_skip")

    fields: dict[str, Any] = {
        "Steps": params.get("steps"),
        "Sampler": sampler_label(params.get("sampler")),
        "Schedule type": scheduler_label(params.get("scheduler")),
        "CFG scale": params.get("cfg_scale"),
        "Seed": seed,
        "Size": f"{width}x{height}" if width and height else None,
        "Model hash": model_hash or None,
        "Model": model_name or None,
        "Denoising strength": denoise,
        "Clip skip": clip_skip if isinstance(clip_skip, int) and clip_skip > 1 else None,
    }
    if hires_on:
        target_w, target_h = hires.get("target_width"), hires.get("target_height")
        if hires.get("scale") is not None or not (target_w and target_h):
            fields["Hires upscale"] = hires.get("scale")
        else:
            fields["Hires resize"] = f"{target_w}x{target_h}"
        fields["Hires steps"] = hires.get("steps") or None
        upscaler = hires.get("upscaler")
        model = hires.get("model") or hires.get("model_path")
        if model and (upscaler is None or str(upscaler).lower() == "model"):
            upscaler = Path(str(model).replace("\\", "/")).stem
        fields["Hires upscaler"] = upscaler
    fields["Version"] = f"sdrest {sdrest.__version__}"

    line = ", ".join(f"{key}: {_quote(value)}" for key, value in fields.items() if value is not None and value != "")
    negative_line = f"\nNegative prompt: {negative}" if negative else ""
    return f"{prompt}{negative_line}\n{line}".strip()


def parse_infotext(text: str) -> dict[str, str]:
    """Read an infotext back the way A1111 does.

    Returns ``{"prompt": ..., "negative_prompt": ..., "Steps": "20", "Sampler": "Euler a", ...}``:
    the prompts, then every ``Key: value`` pair of the last line as strings (quoted values
    unquoted, ``Size`` kept as ``"512x512"``). As in A1111, whitespace around each prompt line is
    not preserved, and a prompt line starting with ``Negative prompt:`` starts the negative.
    """
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    *lines, last = text.strip().split("\n")
    if len(_RE_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    result: dict[str, str] = {"prompt": "\n".join(prompt_lines), "negative_prompt": "\n".join(negative_lines)}
    for key, value in _RE_PARAM.findall(last):
        result[key] = _unquote(value)
    return result
