"""The API's request and response bodies as pydantic v2 models, and how routes declare them.

Declaring a route (any blueprint: ``/api/v1``, ``/sdapi/v1``, ``/v1``)::

    from sdrest.api.schemas import Content, api_doc

    @bp.post("/txt2img")
    @api_doc(request=Txt2ImgRequest, responses={200: Txt2ImgResponse}, errors=(400, 422, 503),
             error_model=MyErrorBody, tags=("sdapi",))
    def txt2img() -> Any:
        \"\"\"Text to image (this line is the operation's summary).\"\"\"

- ``request``: a pydantic model of the body (``RequestModel`` for sdrest's strict bodies).
- ``responses``: ``{status: Model | None | Content(media_types, schema, description)}``.
- ``errors``: the error statuses the route answers, documented with ``error_model``
  (default: sdrest's ``{"error": {"code", "message", "field"}}``).
- ``query``: a model whose fields are the query parameters.

``GET /api/v1/openapi.json`` is generated from these (:mod:`sdrest.api.openapi`), and
``tests/api/test_openapi.py`` fails for any route without one. :mod:`sdrest.api.schemas.parsing`
reads a body (JSON, multipart or url-encoded form) into a model with sdrest's error format.
"""

from sdrest.api.schemas.base import ErrorDetail, ErrorResponse, RequestModel, ResponseModel
from sdrest.api.schemas.operation import Content, Operation, api_doc, operation_of

__all__ = [
    "Content",
    "ErrorDetail",
    "ErrorResponse",
    "Operation",
    "RequestModel",
    "ResponseModel",
    "api_doc",
    "operation_of",
]
