"""What a route takes and answers, attached to its view function for the OpenAPI document.

Register a route's models with the :func:`api_doc` decorator, under the route decorator::

    from sdrest.api.schemas import Content, api_doc

    @bp.post("/txt2img")
    @api_doc(request=Txt2ImgRequest, responses={200: Txt2ImgResponse}, errors=(400, 422, 503))
    def txt2img() -> Any:
        \"\"\"Summary line (the operation's summary; further lines its description).\"\"\"

``responses`` maps each success status to a pydantic model (JSON), ``None`` (no body, e.g.
204), or a :class:`Content` for other media types (images, event streams), a plain JSON
Schema, or a tuple of models (the body is one of them). ``errors`` lists the error statuses
the route itself answers; they are documented with ``error_model`` (default
:class:`~sdrest.api.schemas.base.ErrorResponse`, sdrest's ``{"error": {...}}``; a
compatibility API passes its own). 401, 403 and 500 (the access checks run before every view)
are added to every operation by the document builder. ``query`` is a model
whose fields are the query parameters. The spec is stored on the view function itself (no
global registry), so it lives exactly as long as the route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeVar

from pydantic import BaseModel

from sdrest.api.schemas.base import ErrorResponse

F = TypeVar("F", bound=Callable[..., Any])

#: Attribute of a view function holding its :class:`Operation` (one per HTTP method, or "*").
ATTRIBUTE = "__sdrest_api_doc__"


@dataclass(frozen=True)
class Content:
    """A non-JSON body, or JSON described by a plain schema instead of a model."""

    media_types: tuple[str, ...] = ("application/json",)
    schema: type[BaseModel] | tuple[type[BaseModel], ...] | dict[str, Any] | None = None  # a tuple: any of them
    description: str = ""


ResponseSpec = type[BaseModel] | Content | None


class DocDefaults(TypedDict, total=False):
    """What a group of routes passes to every :func:`api_doc` alike (``**defaults``)."""

    error_model: type[BaseModel]
    tags: Iterable[str]


@dataclass(frozen=True)
class Operation:
    """The documented request and responses of one route (for one or all of its methods)."""

    responses: Mapping[int, ResponseSpec]
    request: type[BaseModel] | None = None
    request_required: bool = True
    form: bool = True  # the body may also be multipart/form-data or url-encoded
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    error_model: type[BaseModel] = ErrorResponse
    tags: tuple[str, ...] = ()
    descriptions: Mapping[int, str] = field(default_factory=dict)


def api_doc(
    *,
    responses: Mapping[int, ResponseSpec],
    request: type[BaseModel] | None = None,
    request_required: bool = True,
    form: bool = True,
    query: type[BaseModel] | None = None,
    errors: Iterable[int] = (),
    error_model: type[BaseModel] = ErrorResponse,
    tags: Iterable[str] = (),
    descriptions: Mapping[int, str] | None = None,
    methods: Iterable[str] = ("*",),
) -> Callable[[F], F]:
    """Attach an :class:`Operation` to a view function (see the module docstring).

    ``descriptions`` overrides the text of a status (default: its HTTP phrase); ``methods``
    restricts the spec to some of the view's HTTP methods (a view serving GET and POST may
    carry one ``api_doc`` per method).
    """
    operation = Operation(
        responses=dict(responses),
        request=request,
        request_required=request_required,
        form=form,
        query=query,
        errors=tuple(sorted(set(errors))),
        error_model=error_model,
        tags=tuple(tags),
        descriptions=dict(descriptions or {}),
    )

    def attach(view: F) -> F:
        specs: dict[str, Operation] = dict(getattr(view, ATTRIBUTE, {}))
        for method in methods:
            specs[method.upper()] = operation
        setattr(view, ATTRIBUTE, specs)
        return view

    return attach


def operation_of(view: Callable[..., Any], method: str) -> Operation | None:
    """The spec registered for ``view`` and ``method``, if any."""
    specs: dict[str, Operation] = getattr(view, ATTRIBUTE, {})
    return specs.get(method.upper()) or specs.get("*")
