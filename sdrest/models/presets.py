"""Presets, prompt templates and A1111 ``<lora:name:weight>`` tags.

* A preset (``presets/*.json|yaml|yml``) is a mapping of generation request fields
  (``{"steps": 30, "cfg_scale": 6, "sampler": "dpm++2m"}``) that a request can name
  instead of repeating them. Validation of the fields themselves belongs to the request
  parser; here we only guarantee "a mapping with string keys", with an error that says
  which file is wrong and why.
* A prompt template (``prompts/`` and ``neg_prompts/``: ``.txt`` = the text, ``.json`` =
  ``{"template": ..., "description": ...}``) wraps the user's prompt at ``{prompt}``.
  Substitution is plain text replacement, not ``str.format``, because prompts are full
  of braces (dynamic-prompt ``{a|b}`` syntax, JSON snippets).
* ``<lora:name:weight>`` is the syntax users paste from A1111/Civitai; the server turns it
  into a list of LoRAs to apply and a prompt without the tags.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "PLACEHOLDER",
    "PromptTemplate",
    "apply_template",
    "load_preset",
    "load_template",
    "parse_lora_tags",
]

PLACEHOLDER = "{prompt}"
#: Presets and templates are hand-written text; anything bigger is not one.
MAX_TEXT_BYTES = 1 << 20


def _read_text(path: Path) -> str:
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise ValueError(f"{path.name}: file too large ({size} bytes, limit {MAX_TEXT_BYTES})")
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: tolerate a BOM from Windows editors
    except UnicodeDecodeError:
        raise ValueError(f"{path.name}: not UTF-8 text") from None


def load_preset(path: Path) -> dict[str, Any]:
    """The request fields a preset file holds; ``ValueError`` naming the file otherwise."""
    path = Path(path)
    text = _read_text(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path.name}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    elif suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ValueError(f"{path.name}: invalid YAML ({problem}{where})") from None
    else:
        raise ValueError(f"{path.name}: presets must be .json, .yaml or .yml")
    if data is None:
        raise ValueError(f"{path.name}: empty preset; expected a mapping of request fields")
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: a preset must be a mapping of request fields, not a {type(data).__name__}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ValueError(f"{path.name}: field names must be strings, got {bad[0]!r}")
    return data


@dataclass(frozen=True)
class PromptTemplate:
    """A template's text (with or without ``{prompt}``) and an optional description for the UI."""

    template: str
    description: str | None = None


def load_template(path: Path) -> PromptTemplate:
    """Read a ``.txt`` or ``.json`` prompt template; ``ValueError`` naming the file otherwise."""
    path = Path(path)
    text = _read_text(path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return PromptTemplate(text.strip("\r\n"))
    if suffix != ".json":
        raise ValueError(f"{path.name}: prompt templates must be .txt or .json")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("template"), str):
        raise ValueError(f'{path.name}: expected an object with a string "template" field')
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise ValueError(f'{path.name}: "description" must be a string')
    return PromptTemplate(data["template"], description)


_SEPARATOR_RUN = re.compile(r"\s*,(?:\s*,)+\s*")


def _tidy(text: str) -> str:
    """Collapse the ``", ,"`` and leading/trailing commas left where something was removed."""
    text = _SEPARATOR_RUN.sub(", ", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+,", ",", text)
    return text.strip().strip(",").strip()


def apply_template(template: str, prompt: str, *, negative: bool = False) -> str:
    """The prompt a template makes of the user's ``prompt``.

    With ``{prompt}`` every occurrence is replaced. Without it, a positive template is
    prepended (``template + ", " + prompt``) and a negative one is used as is (per the
    spec). An empty ``prompt`` leaves no dangling separators behind.
    """
    prompt = prompt or ""
    if PLACEHOLDER in template:
        result = template.replace(PLACEHOLDER, prompt)
        return _tidy(result) if not prompt.strip() else result
    if negative or not prompt.strip():
        return template
    if not template.strip():
        return prompt
    return f"{template}, {prompt}"


_LORA_TAG = re.compile(r"<lora:([^<>]*)>", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_lora_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """Split A1111 ``<lora:name>``/``<lora:name:weight>`` tags out of ``prompt``.

    Returns the prompt without the tags (separators tidied) and ``(name, weight)`` in
    order of appearance; repeated names are kept (the caller decides whether to sum).
    Names may contain sub-folders and dots (``styles/ink.v2``); whether they exist is
    checked when they are resolved. A bad weight, an empty name, or A1111's extra
    text-encoder/UNet weights (which stable-diffusion.cpp cannot apply separately)
    raise ``ValueError`` naming the tag.
    """
    loras: list[tuple[str, float]] = []
    for match in _LORA_TAG.finditer(prompt):
        tag = match.group(0)
        parts = match.group(1).split(":")
        name = parts[0].strip()
        if not name:
            raise ValueError(f"{tag}: missing LoRA name")
        if len(parts) > 2:
            raise ValueError(f"{tag}: only <lora:name:weight> is supported (no separate text-encoder/UNet weights)")
        weight = 1.0
        if len(parts) == 2:
            raw = parts[1].strip()
            # A strict number syntax: float() would also take "1_0", "nan" and "inf".
            if not _NUMBER.fullmatch(raw):
                raise ValueError(f"{tag}: weight {raw!r} is not a number")
            weight = float(raw)
            if not math.isfinite(weight):
                raise ValueError(f"{tag}: weight {raw!r} is out of range")
        loras.append((name, weight))
    if not loras:
        return prompt, []
    return _tidy(_LORA_TAG.sub(" ", prompt)), loras
