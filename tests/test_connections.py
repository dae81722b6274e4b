"""Slowloris: half-sent requests from one address cannot keep others out (per-client cap)."""

from __future__ import annotations

import socket

import pytest
import requests

from sdrest.settings import Settings, SettingsError
from server_helpers import Server, link_models

pytestmark = pytest.mark.slow


def _half_sent(source: str, port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
    return sock


def test_half_sent_requests_from_one_address_leave_room_for_others(models, tmp_path) -> None:
    # 2 + 4 threads: one address may hold 6 connections of the 100 Waitress accepts.
    server = Server(
        tmp_path, link_models(models, tmp_path / "models"), "--http-threads", "2", "--max-event-streams", "4"
    ).start(wait_for_worker=False)
    sockets = []
    try:
        sockets = [_half_sent("127.0.0.2", server.port) for _ in range(150)]  # the review's 150
        # Served at once rather than after the idle timeout: before, the 150 used up every slot.
        assert requests.get(server.url("/api/v1/status"), timeout=20).status_code == 200
        closed = 0
        for sock in sockets:
            sock.settimeout(2)
            try:
                closed += sock.recv(1) == b""
            except ConnectionResetError:  # closed with our half request unread
                closed += 1
            except TimeoutError:
                pass  # one of the six it keeps (until the idle timeout)
        assert closed >= 150 - 6
    finally:
        for sock in sockets:
            sock.close()
        server.stop()


def test_the_cap_is_a_count_of_connections() -> None:
    assert Settings.from_mapping({"max_connections_per_client": 0}).max_connections_per_client == 0  # no cap
    with pytest.raises(SettingsError, match="max_connections_per_client"):
        Settings.from_mapping({"max_connections_per_client": -1})
