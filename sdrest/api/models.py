"""The model library: list, inspect, rescan; load and unload through the job queue;
presets and prompt templates."""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from sdrest.api.errors import ApiError, not_found
from sdrest.api.jobparams import find_model, model_params, read_values
from sdrest.api.schemas import Content, api_doc
from sdrest.api.schemas.generation import LoadRequest, UnloadRequest
from sdrest.api.schemas.jobs import JobView, SubmitQuery
from sdrest.api.schemas.library import (
    ModelDetails,
    ModelList,
    ModelListQuery,
    ModelQuery,
    PresetList,
    PresetView,
    ScanView,
    TemplateList,
    TemplateQuery,
    TemplateView,
)
from sdrest.api.schemas.parsing import parse_query, read_body
from sdrest.api.schemas.recipes import RecipeList
from sdrest.api.views import API
from sdrest.auth.origin import refuse_cross_site_work
from sdrest.auth.web import current_principal, owner_for_new_jobs
from sdrest.models.paths import InvalidModelName, ModelNotFoundError
from sdrest.models.presets import load_preset, load_template
from sdrest.models.recipes import Recipe, load_recipes
from sdrest.models.scanner import ModelEntry, ModelLibrary
from sdrest.models.types import ModelFolders, ModelType, parse_type_filter
from sdrest.services import Services, services

bp = Blueprint("models", __name__, url_prefix=API)


@bp.get("/models")
@api_doc(query=ModelListQuery, responses={200: ModelList}, errors=(400,))
def list_models() -> Any:
    """Models, filtered by ?type= (names like lora,checkpoint or a bit mask like 3) and ?search=."""
    svc = services()
    query = parse_query(ModelListQuery, request.args)
    return _listing(svc, _type_filter(query.type), query)


@bp.get("/models/recipes")
@api_doc(responses={200: RecipeList})
def recipes() -> Any:
    """The shipped recipes (ready model setups, `sdrest pull NAME` or POST /models/downloads
    {"recipe": NAME}) with the files each needs and which of them this server has; an installed
    model recipe is one model name (`model: NAME`)."""
    folders = services().library.folders
    recipes = load_recipes(services().settings.recipes)
    return jsonify({"recipes": [_recipe_view(recipe, folders) for recipe in recipes.values()]})


def _recipe_view(recipe: Recipe, folders: ModelFolders) -> dict[str, Any]:
    files = [
        {
            "source": f.source,
            "type": f.type.api_name,
            "name": f.name,
            "field": f.field,
            "size": f.size,
            "sha256": f.sha256,
            "installed": f.installed(folders),
        }
        for f in recipe.files
    ]
    missing = [f["size"] for f in files if not f["installed"]]
    return {
        "name": recipe.name,
        "title": recipe.title,
        "family": recipe.family,
        "license": recipe.license,
        "memory_mb": recipe.memory_mb,
        "size": recipe.size,
        "selectable": recipe.selectable,
        "installed": recipe.is_installed(folders),
        "missing_bytes": None if None in missing else sum(s for s in missing if s is not None),
        "preset": recipe.preset(),
        "sd_cli_flags": list(recipe.sd_cli_flags),
        "files": files,
    }


@bp.get("/models/<path:model_id>")
@api_doc(
    query=ModelQuery,
    responses={200: Content(schema=(ModelList, ModelDetails), description="a type's models, or one model's details")},
    errors=(400, 404, 429),
)
def model(model_id: str) -> Any:
    """A type's models (/models/lora) or one model's details (/models/checkpoint/sd15.safetensors).

    Details include the detected architecture, whether it is loaded and its hashes
    (computed on demand with ?hashes=true, cached by path, size and time).
    """
    svc = services()
    query = parse_query(ModelQuery, request.args)
    try:
        model_type = ModelType.from_name(model_id)
    except ValueError:
        model_type = None
    if model_type is not None and "/" not in model_id:
        return _listing(svc, model_type, query)
    entry = svc.library.get(model_id) or _checkpoint_named(svc.library, model_id)
    if entry is None:
        raise not_found(f"model {model_id!r}", "model_id")
    details = _view(svc, entry)
    if query.hashes:
        details.update(_hashes(svc, entry))
    return jsonify(details)


def _hashes(svc: Services, entry: Any) -> dict[str, str]:
    """A model's hashes: admins only (a multi-GB file takes a core for a minute), and one
    computation at a time server-wide; others wait their turn with 429 (then it is cached)."""
    principal = current_principal()
    if principal is not None and not principal.sees_everything:
        raise ApiError(403, "forbidden", "hashes: computing hashes is for admins", "hashes")
    refuse_cross_site_work(request, "hashes")
    lock: threading.Lock = current_app.extensions.setdefault("sdrest.hashing", threading.Lock())
    if not lock.acquire(blocking=False):
        raise ApiError(
            429,
            "busy_hashing",
            "hashes: another model is being hashed; try again shortly",
            "hashes",
            headers={"Retry-After": "5"},
        )
    try:
        hashes = svc.library.hashes(entry)
    finally:
        lock.release()
    return {"sha256": hashes.sha256, "short_hash": hashes.short_hash, "legacy_hash": hashes.legacy_hash}


@bp.post("/models/scan")
@api_doc(responses={200: ScanView})
def scan() -> Any:
    """Scan the model folders again (new, changed and removed files)."""
    svc = services()
    result = svc.library.scan()
    return jsonify(
        {
            "models": len(result.entries),
            "counts": result.counts(),
            "skipped": [{"path": s.path, "reason": s.reason} for s in result.skipped],
            "missing_folders": [str(p) for p in result.missing_folders],
            "seconds": round(result.seconds, 4),
        }
    )


@bp.post("/models/load")
@api_doc(
    request=LoadRequest,
    request_required=False,
    query=SubmitQuery,
    errors=(400, 404, 413, 415, 422, 429, 503),
    responses={
        200: Content(schema=JobView, description="loaded (waiting): the finished job"),
        202: Content(schema=JobView, description="queued: the job, with a Location header"),
    },
)
def load() -> Any:
    """Queue loading a model (with components and options); ordered with generation jobs."""
    from sdrest.api.generate import accepted, check_queue_room, waiting_slot, wants_wait

    svc = services()
    data, from_form = read_body(request)
    values = read_values(LoadRequest, data, from_form=from_form, capabilities=svc.supervisor.capabilities)
    spec = model_params(values, svc.library)
    if spec["model_path"] is None and "diffusion_model_path" not in spec["model_options"]:
        raise ApiError(422, "missing_field", "model: required (or diffusion_model)", "model")
    check_queue_room(svc)
    with waiting_slot(svc, wants_wait(values, default=False)) as wait:
        job = svc.store.create(
            "load_model", {"mode": "load", **spec}, owner=owner_for_new_jobs(), priority=values.get("priority", 0)
        )
        return accepted(svc, job, values, wait=wait)


@bp.post("/models/unload")
@api_doc(
    request=UnloadRequest,
    request_required=False,
    query=SubmitQuery,
    errors=(400, 413, 415, 422, 429, 503),
    responses={
        200: Content(schema=JobView, description="unloaded (waiting): the finished job"),
        202: Content(schema=JobView, description="queued: the job, with a Location header"),
    },
)
def unload() -> Any:
    """Queue unloading the model (frees its memory once the jobs before it are done)."""
    from sdrest.api.generate import accepted, check_queue_room, waiting_slot, wants_wait

    svc = services()
    data, from_form = read_body(request)
    values = read_values(UnloadRequest, data, from_form=from_form)
    check_queue_room(svc)
    with waiting_slot(svc, wants_wait(values, default=False)) as wait:
        job = svc.store.create(
            "unload_model", {"mode": "unload"}, owner=owner_for_new_jobs(), priority=values.get("priority", 0)
        )
        return accepted(svc, job, values, wait=wait)


@bp.get("/presets")
@api_doc(responses={200: PresetList})
def presets() -> Any:
    """Presets with their fields."""
    svc = services()
    return jsonify({"presets": [_preset_view(e) for e in svc.library.entries(ModelType.PRESETS)]})


@bp.get("/presets/<path:name>")
@api_doc(responses={200: PresetView}, errors=(400, 404))
def preset(name: str) -> Any:
    """One preset."""
    return jsonify(_preset_view(find_model(services().library, ModelType.PRESETS, name, "name")))


@bp.get("/prompts")
@api_doc(query=TemplateQuery, responses={200: TemplateList}, errors=(400,))
def prompt_templates() -> Any:
    """Prompt and negative prompt templates (?type=prompts or neg_prompts)."""
    svc = services()
    wanted = parse_query(TemplateQuery, request.args).type
    kinds = [ModelType.from_name(wanted)] if wanted else [ModelType.PROMPTS, ModelType.NEG_PROMPTS]
    return jsonify({"templates": [_template_view(e) for kind in kinds for e in svc.library.entries(kind)]})


@bp.get("/prompts/<kind>/<path:name>")
@api_doc(responses={200: TemplateView}, errors=(400, 404))
def prompt_template(kind: str, name: str) -> Any:
    """One template: /prompts/prompts/<name> or /prompts/neg_prompts/<name>."""
    if kind not in ("prompts", "neg_prompts"):
        raise not_found(f"template kind {kind!r}", "kind")
    return jsonify(_template_view(find_model(services().library, ModelType.from_name(kind), name, "name")))


def _checkpoint_named(library: ModelLibrary, name: str) -> ModelEntry | None:
    """The checkpoint that ``"model": name`` in a generation request would use (``sd-v1-5``)."""
    try:
        return library.find(ModelType.CHECKPOINT, name, "model_id")
    except InvalidModelName as exc:
        raise ApiError(400, "invalid_name", str(exc), "model_id") from None
    except ModelNotFoundError:
        return None


def _listing(svc: Services, type_filter: ModelType | None, query: ModelListQuery) -> Any:
    entries = svc.library.entries(type_filter, query.search)
    limit, offset = query.limit, query.offset
    return jsonify(
        {
            "models": [_view(svc, e) for e in entries[offset : offset + limit]],
            "total": len(entries),
            "limit": limit,
            "offset": offset,
        }
    )


def _view(svc: Services, entry: ModelEntry) -> dict[str, Any]:
    view = ModelLibrary.to_dict(entry)
    state = svc.supervisor.state()
    view["loaded"] = entry.type == ModelType.CHECKPOINT and state.loaded_model in (entry.name, entry.relative_path)
    view["type_flag"] = int(entry.type)
    return view


def _preset_view(entry: ModelEntry) -> dict[str, Any]:
    try:
        fields: Any = load_preset(entry.path)
        error = None
    except ValueError as exc:
        fields, error = None, str(exc)
    return {"name": entry.name, "id": entry.id, "fields": fields, "error": error}


def _template_view(entry: ModelEntry) -> dict[str, Any]:
    template = load_template(entry.path)
    return {
        "name": entry.name,
        "id": entry.id,
        "kind": entry.type.api_name,
        "template": template.template,
        "description": template.description,
    }


def _type_filter(raw: str | None) -> ModelType | None:
    if raw is None or raw == "":
        return None
    try:
        return parse_type_filter(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_query", f"type: {exc}", "type") from None
