"""Field types shared by the request models: images, and names checked against the worker.

``Annotated[str, Capability("samplers")]`` is a string that must be one of the names the generation worker
reports (``GET /api/v1/status`` ``capabilities``); the list comes in the validation context
(``{"capabilities": {...}}``), so it is what the loaded library really offers, not a copy.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError
from werkzeug.datastructures import FileStorage

IMAGE_FORMS = "base64, a data URL, an http(s) URL, or a multipart file part"


def _image(value: Any) -> Any:
    if not isinstance(value, (str, FileStorage)):
        raise PydanticCustomError("image_type", "must be an image: " + IMAGE_FORMS)
    return value


#: An input image as the request gave it (decoded later, with the server's size limits).
ImageInput = Annotated[
    Any, PlainValidator(_image), WithJsonSchema({"type": "string", "description": "An image: " + IMAGE_FORMS + "."})
]


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


#: Several images (one image alone counts as a list of one).
ImageList = Annotated[list[ImageInput], BeforeValidator(_as_list)]


def Capability(name: str) -> AfterValidator:  # noqa: N802 - reads as a type's metadata
    """``Annotated[str, Capability("samplers")]``: a string that must be among the worker's
    ``capabilities[name]``."""

    def check(value: str, info: ValidationInfo) -> str:
        choices = ((info.context or {}).get("capabilities") or {}).get(name)
        if choices is not None and value not in choices:
            raise PydanticCustomError(
                "invalid_choice",
                "unknown value {value!r}; valid: {valid}",
                {"value": value, "valid": ", ".join(choices)},
            )
        return value

    return AfterValidator(check)


def capability_text(name: str, description: str) -> str:
    return f"{description} One of GET /api/v1/status `capabilities.{name}`."


#: A file name in one of the model folders (resolved, and checked to stay inside it, later).
#: The field says which folder in its own description.
ModelFile = Annotated[str, Field(max_length=512)]
