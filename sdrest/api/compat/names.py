"""A1111's names for samplers, schedulers and checkpoints, and sdrest's names for them.

A1111 writes samplers as display labels (``Euler a``, ``DPM++ 2M``) and, in older clients,
with the schedule folded in (``DPM++ 2M Karras``); its schedulers are lower-case names with
labels (``karras`` / ``Karras``). The labels themselves are the ones sdrest already writes into
infotexts (:data:`sdrest.infotext.SAMPLER_LABELS`), so a name read from an infotext maps back.
A name that has no sdrest equivalent is an error naming the field, never a silent substitute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sdrest.api.errors import invalid
from sdrest.api.jobparams import model_preset
from sdrest.infotext import SAMPLER_LABELS, SCHEDULER_LABELS
from sdrest.models.scanner import ModelEntry, ModelLibrary

#: A1111 scheduler names that differ from sd.cpp's (A1111 name -> sd.cpp name).
_A1111_SCHEDULERS = {"align_your_steps": "ays"}
#: Scheduler values that mean "the model's default".
AUTOMATIC = ("automatic", "")


def _lookup(value: str, names: Sequence[str], labels: dict[str, str]) -> str | None:
    lowered = value.strip().lower()
    for name in names:
        if lowered == name.lower() or lowered == labels.get(name, name).lower():
            return name
    return None


def scheduler_name(value: str, schedulers: Sequence[str], field: str = "scheduler") -> str | None:
    """sd.cpp's scheduler for an A1111 name or label (``Karras``, ``karras``); None: automatic."""
    lowered = value.strip().lower()
    if lowered in AUTOMATIC:
        return None
    found = _lookup(_A1111_SCHEDULERS.get(lowered, lowered), schedulers, SCHEDULER_LABELS)
    if found is None:
        valid = ", ".join(["Automatic", *(SCHEDULER_LABELS.get(s, s) for s in schedulers)])
        raise invalid(field, f"unknown scheduler {value!r}; valid: {valid}")
    return found


def sampler_name(
    value: str, samplers: Sequence[str], schedulers: Sequence[str], field: str = "sampler_name"
) -> tuple[str, str | None]:
    """(sampler, scheduler or None) for ``Euler a``, ``DPM++ 2M Karras``, ``dpm++2m``, ..."""
    found = _lookup(value, samplers, SAMPLER_LABELS)
    if found is not None:
        return found, None
    head, _, tail = value.strip().rpartition(" ")
    if head:
        sampler = _lookup(head, samplers, SAMPLER_LABELS)
        if sampler is not None:
            try:
                return sampler, scheduler_name(tail, schedulers, field)
            except Exception:  # noqa: BLE001 - reported below with the sampler list
                pass
    valid = ", ".join(SAMPLER_LABELS.get(s, s) for s in samplers)
    raise invalid(
        field, f"unknown sampler {value!r}; valid: {valid} (optionally followed by a scheduler such as Karras)"
    )


def sampler_label(name: str) -> str:
    return SAMPLER_LABELS.get(name, name)


def scheduler_label(name: str) -> str:
    return SCHEDULER_LABELS.get(name, name)


# --- checkpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as A1111 names it."""

    entry: ModelEntry
    sha256: str | None

    @property
    def short_hash(self) -> str | None:
        return self.sha256[:10] if self.sha256 else None

    @property
    def model_name(self) -> str:
        return self.entry.name.replace("/", "_")

    @property
    def title(self) -> str:
        return f"{self.entry.relative_path} [{self.short_hash}]" if self.short_hash else self.entry.relative_path


def checkpoint(library: ModelLibrary, entry: ModelEntry) -> Checkpoint:
    """The entry with its sha256 if it was ever hashed (never hashes now: that takes seconds)."""
    sha = entry.sha256
    if sha is None and library.hash_cache is not None:
        sha = library.hash_cache.get(entry.path)
    return Checkpoint(entry, sha)


def find_checkpoint(library: ModelLibrary, value: str, field: str) -> Checkpoint:
    """A checkpoint by A1111 title (``name.safetensors [hash]``), file name, name or hash."""
    from sdrest.models.types import ModelType

    text = value.strip()
    bare = text.rsplit(" [", 1)[0] if text.endswith("]") else text
    wanted = {text.lower(), bare.lower()}
    for entry in library.entries(ModelType.CHECKPOINT):
        ckpt = checkpoint(library, entry)
        names = {entry.name.lower(), entry.relative_path.lower(), ckpt.model_name.lower(), ckpt.title.lower()}
        hashes = {h for h in (ckpt.sha256, ckpt.short_hash) if h}
        if wanted & names or text.lower() in hashes:
            return ckpt
    try:  # a file added since the last scan
        return checkpoint(library, library.find(ModelType.CHECKPOINT, bare, field))
    except Exception:  # noqa: BLE001 - unknown or invalid name: one clear error below
        raise invalid(
            field, f"no checkpoint {value!r}; see GET /sdapi/v1/sd-models", code="model_not_found", status=404
        ) from None


def model_name(library: ModelLibrary, value: str, field: str) -> str:
    """The ``model`` of a compatibility request (A1111's checkpoint title or name, OpenAI's model):
    a model preset's name as it is (an installed recipe: expanded by ``with_preset``), else the
    checkpoint's name."""
    if model_preset(library, value.strip()) is not None:
        return value.strip()
    return find_checkpoint(library, value, field).entry.name
