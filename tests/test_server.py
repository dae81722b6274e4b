"""``sdrest serve`` under Waitress: it stops at SIGTERM whatever its clients keep open."""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest
import requests

from server_helpers import Server, link_models

pytestmark = pytest.mark.slow


def test_sigterm_stops_the_server_with_an_event_stream_and_a_keep_alive_connection_open(models, tmp_path) -> None:
    server = Server(tmp_path, link_models(models, tmp_path / "models")).start()
    session = requests.Session()  # keeps its connection open after each answer
    assert session.get(server.url("/api/v1/status"), timeout=30).status_code == 200
    stream = requests.get(server.url("/api/v1/events"), stream=True, timeout=60)
    assert stream.status_code == 200
    reader = threading.Thread(target=lambda: [None for _ in stream.iter_lines()], daemon=True)
    reader.start()
    process = server.process
    assert process is not None
    process.send_signal(signal.SIGTERM)
    try:
        # Far less than Waitress's channel timeout (120 s): before the fix the server waited
        # for its clients to hang up, and an event stream never does.
        assert process.wait(60) == 0
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("sdrest serve did not stop at SIGTERM while clients kept connections open") from None
    finally:
        session.close()
        stream.close()
        server.stop()
    assert "stopping (signal 15)" in server.log_text()
