"""Schemathesis over the server's own /api/v1/openapi.json: every operation, with --auth none
and with --auth jwt (as an admin API key), checking that no answer is a 5xx and that every
answer conforms to the document (status code, content type, body schema).

The server has no models, so no fuzzed request can start real work: generation requests end
in 4xx (409 no model, 404 unknown names) however valid they are. Event streams are opened,
checked for their content type and closed (their bodies never end).
"""

from __future__ import annotations

import pytest
import requests
from hypothesis import HealthCheck, given, settings

from sdrest.auth.store import AuthStore
from server_helpers import Server

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 50
MIN_CASES = 1000


def _fuzz(server: Server, headers: dict[str, str]) -> tuple[int, list[str], int]:
    schema = schemathesis.openapi.from_url(server.url("/api/v1/openapi.json"))
    cases, failures, server_errors = 0, [], 0
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        streaming = operation.path.endswith("/events")

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:
            nonlocal cases, server_errors
            # The loop variables are read while this iteration runs the cases (noqa: B023 below).
            if streaming:  # noqa: B023 - the body of a 200 never ends: only the head is read
                kwargs = case.as_transport_kwargs(base_url=server.base, headers=headers)
                response = session.request(**kwargs, stream=True, timeout=60)
            else:
                response = case.call(base_url=server.base, headers=headers, timeout=60, session=session)
            cases += 1
            if response.status_code >= 500:
                server_errors += 1
            if streaming and response.status_code == 200:  # noqa: B023
                assert response.headers["Content-Type"].startswith("text/event-stream")
                response.close()
                return
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:  # noqa: BLE001 - collect every finding, not just the first
                failures.append(
                    f"{operation.method.upper()} {operation.path} -> {response.status_code}: "  # noqa: B023
                    f"{str(exc).splitlines()[0][:300]}"
                )

        run()
    return cases, failures, server_errors


@pytest.mark.parametrize("auth", ["none", "jwt"])
def test_fuzzing_finds_no_5xx_and_no_schema_violation(tmp_path, auth) -> None:
    (tmp_path / "models").mkdir()
    server = Server(tmp_path, tmp_path / "models", "--auth", auth)
    headers: dict[str, str] = {}
    if auth == "jwt":
        server.data_dir.mkdir(parents=True)
        with AuthStore(server.data_dir / "auth.sqlite3") as store:
            key, _ = store.create_key("fuzz", "admin", owner="fuzzer")
        headers = {"X-API-Key": key}
    server.start(wait_for_worker=auth == "none")
    try:
        cases, failures, server_errors = _fuzz(server, headers)
        distinct = sorted(set(failures))
        print(f"\nschemathesis --auth {auth}: {cases} cases, {server_errors} 5xx, {len(failures)} violations")
        for line in distinct[:40]:
            print("  " + line)
        assert server.get("/api/v1/status", headers=headers).status_code == 200  # still serving
        assert server_errors == 0 and distinct == []
        assert cases >= MIN_CASES
    finally:
        server.stop()
