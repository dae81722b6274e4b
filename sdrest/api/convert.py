"""Model conversion as an admin job: ``POST /api/v1/models/convert``.

The worker runs the library's converter (it holds the native library); the job queues with
generations. The output is a plain file name resolved inside the source's model folder: no
path, no leading dot, no overwriting (409), so a request can write nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, request

from sdrest.api.errors import ApiError
from sdrest.api.generate import (
    SUBMITTED,
    accepted,
    check_queue_room,
    waiting_slot,
    wants_wait,
)
from sdrest.api.jobparams import find_model, read_values
from sdrest.api.schemas import api_doc
from sdrest.api.schemas.convert import ConvertRequest
from sdrest.api.schemas.jobs import SubmitQuery
from sdrest.api.schemas.parsing import read_body
from sdrest.api.views import API
from sdrest.auth.web import owner_for_new_jobs
from sdrest.modelfiles import default_output
from sdrest.models.types import ModelType
from sdrest.services import Services, services

bp = Blueprint("convert", __name__, url_prefix=API)

DEFAULT_WEIGHT_TYPE = "q8_0"


@bp.post("/models/convert")
@api_doc(
    request=ConvertRequest, query=SubmitQuery, responses=SUBMITTED, errors=(400, 404, 409, 413, 415, 422, 429, 503)
)
def convert_model() -> Any:
    """Quantise a model to GGUF (weight type, tensor type rules); the output joins the same folder."""
    svc = services()
    data, from_form = read_body(request)
    values = read_values(ConvertRequest, data, from_form=from_form, capabilities=svc.supervisor.capabilities)
    params = convert_params(values, svc)
    check_queue_room(svc, values.get("priority") or 0)
    with waiting_slot(svc, wants_wait(values, default=False)) as wait:
        job = svc.store.create("convert", params, owner=owner_for_new_jobs(), priority=values.get("priority") or 0)
        return accepted(svc, job, values, wait=wait)


def convert_params(values: dict[str, Any], svc: Services) -> dict[str, Any]:
    """The stored parameters of a conversion job: the source and the output, both resolved inside
    their model folders."""
    model_type = ModelType.from_name(values.get("type", "checkpoint"))
    source = find_model(svc.library, model_type, values["model"], "model")
    weight_type = values.get("weight_type") or DEFAULT_WEIGHT_TYPE
    output = output_path(svc.library.folders.path(model_type), Path(source.path), values.get("output"), weight_type)
    params: dict[str, Any] = {
        "mode": "convert",
        "model": values["model"],
        "type": model_type.api_name,
        "model_path": None,
        "input_path": str(source.path),
        "output": output.name,
        "output_path": str(output),
        "weight_type": weight_type,
    }
    if values.get("vae") is not None:
        params["vae_path"] = str(find_model(svc.library, ModelType.VAE, values["vae"], "vae").path)
    for key in ("tensor_type_rules", "convert_name"):
        if values.get(key) is not None:
            params[key] = values[key]
    return params


def output_path(folder: Path, source: Path, name: str | None, weight_type: str) -> Path:
    """``folder/name.gguf``: 400 unless it is a plain file name inside ``folder``, 409 if it exists."""
    if name is None:
        name = default_output(source, weight_type).name
    elif not name.lower().endswith(".gguf"):
        name += ".gguf"
    root = folder.resolve()
    target = (root / name).resolve()
    # The schema's pattern already allows no separator or leading dot; this is the last word.
    if target.parent != root or name.startswith(".") or "/" in name or "\\" in name:
        raise ApiError(400, "invalid_name", f"output: {name!r} is not a file name inside the model folder", "output")
    if target.exists():
        raise ApiError(409, "exists", f"output: {name!r} already exists", "output")
    return target


__all__ = ["bp"]
