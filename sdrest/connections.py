"""Waitress connections: a cap per client address and short inactivity timeouts (slowloris).

Waitress reads a request whole before a thread runs it, so a client that sends its request a
byte at a time holds no thread, but it holds a connection, and Waitress stops accepting any at
``connection_limit``: 150 half-sent requests from one address left a normal request unanswered
for 10 s, with no credentials needed. Each client address (an IPv6 one by its /64, as the login
throttle counts it) may therefore hold at most ``--max-connections-per-client`` connections;
past that a new one is closed at once, so others still get in. Addresses of ``--trusted-proxy``
are exempt (every client behind a proxy shares its address; the proxy bounds them itself:
docs/deployment.md has an nginx setup).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from waitress.channel import HTTPChannel

from sdrest.auth.throttle import client_bucket

__all__ = ["CLEANUP_SECONDS", "IDLE_SECONDS", "limit_per_client", "limited_channel"]

#: A connection with no request in progress and no bytes for this long is closed (Waitress's
#: default is 120 s). Event streams send a keep-alive every 15 s; a running request (a wait of
#: minutes included) is never cut by it.
IDLE_SECONDS = 30
#: How often Waitress looks for such connections (its default is 30 s).
CLEANUP_SECONDS = 10


def _exempt(address: str, proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def limit_per_client(
    server: Any, per_client: int, proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> None:
    """Give ``server`` (what waitress.create_server returned: one listener, or several) the capped
    channel class."""
    channel = limited_channel(per_client, proxies)
    listeners = [server] if hasattr(server, "channel_class") else list(getattr(server, "map", {}).values())
    for listener in listeners:
        if hasattr(listener, "channel_class"):
            listener.channel_class = channel


def limited_channel(per_client: int, proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> type:
    """Waitress's channel class, closing a new connection whose address already holds
    ``per_client`` of them (0: no cap)."""

    class PerClientChannel(HTTPChannel):
        def __init__(self, server: Any, sock: socket.socket, addr: Any, adj: Any, map: Any = None) -> None:
            host = addr[0] if isinstance(addr, tuple) and addr else ""
            if per_client > 0 and host and not _exempt(host, proxies):
                bucket = client_bucket(host)
                held = sum(
                    1
                    for channel in list(server.active_channels.values())
                    if isinstance(channel.addr, tuple) and client_bucket(channel.addr[0]) == bucket
                )
                if held >= per_client:
                    # Never registered with the loop: the socket is closed and nothing refers to it.
                    sock.close()
                    return
            super().__init__(server, sock, addr, adj, map)

    return PerClientChannel
