"""Event-stream slots are given back by requests that never read the stream (HEAD)."""

from __future__ import annotations

import pytest
import requests

from server_helpers import Server, link_models

pytestmark = pytest.mark.slow

SLOTS = 3


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("slots")
    server = Server(root, link_models(models, root / "models"), "--max-event-streams", str(SLOTS)).start()
    yield server
    server.stop()


def _all_slots_open(server: Server) -> None:
    """Every slot can be taken at once again (then they are given back by closing)."""
    streams = [server.get("/api/v1/events", stream=True, timeout=30) for _ in range(SLOTS)]
    try:
        assert [s.status_code for s in streams] == [200] * SLOTS
        extra = server.get("/api/v1/events", stream=True, timeout=30)
        assert extra.status_code == 429  # the bound itself still holds
        extra.close()
    finally:
        for stream in streams:
            stream.close()


def test_head_requests_give_their_slot_back(server: Server) -> None:
    for path in ["/api/v1/events"] * (SLOTS * 4):
        response = requests.head(server.url(path), timeout=30)
        assert response.status_code == 200
    _all_slots_open(server)
