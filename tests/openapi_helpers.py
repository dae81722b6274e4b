"""Check real HTTP answers against the OpenAPI document the server itself serves.

``SchemaChecker(document).check(response, "/api/v1/jobs/{job_id}", "get")`` asserts that the
status is documented for that operation, that the answer's media type is one the document
gives for that status, and (JSON) that the body validates against the schema given there
(JSON Schema 2020-12, ``$ref``s into ``components.schemas`` resolved). Usable for any
blueprint's routes; ``checked`` records what was seen, so a test can assert its coverage.
"""

from __future__ import annotations

from typing import Any

import requests
from jsonschema import Draft202012Validator


class SchemaChecker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.checked: set[tuple[str, str, int]] = set()

    def operation(self, path: str, method: str) -> dict[str, Any]:
        assert path in self.document["paths"], f"{path} is not documented"
        operations = self.document["paths"][path]
        assert method in operations, f"{method.upper()} {path} is not documented"
        return operations[method]

    def check(self, response: requests.Response, path: str, method: str) -> requests.Response:
        """``response`` (returned for chaining) matches the document for ``method path``."""
        responses = self.operation(path, method)["responses"]
        status = str(response.status_code)
        assert status in responses, (
            f"{method.upper()} {path} answered {status}, documented: {sorted(responses)}; body: {response.text[:300]}"
        )
        self.checked.add((path, method, response.status_code))
        content = responses[status].get("content")
        if content is None:
            assert not response.content, f"{method.upper()} {path} {status}: a body where none is documented"
            return response
        media = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        assert media in content, f"{method.upper()} {path} {status}: {media!r}, documented: {sorted(content)}"
        schema = content[media].get("schema")
        if schema is not None and media == "application/json":
            self.validate(response.json(), schema, f"{method.upper()} {path} {status}")
        return response

    def validate(self, value: Any, schema: dict[str, Any], where: str) -> None:
        """``value`` against ``schema``, whose ``$ref``s point into the document's components."""
        validator = Draft202012Validator({**schema, "components": self.document["components"]})
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        assert not errors, f"{where}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:300]}" for e in errors[:5]
        )
