"""Which hosts an outgoing request may reach: the address checks of the ``public`` policy, shared by
image URLs in requests (sdrest/api/url_fetch.py) and model downloads (sdrest/models/hub/).

Under ``public`` every address a host resolves to must be public: no loopback, private, link-local,
multicast, reserved or otherwise non-global address (IPv4 inside IPv6 checked as IPv4 too). A caller
connects only to addresses checked here, never to a second lookup (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any

__all__ = ["address_problem", "is_ip_literal", "public_host_problem", "resolve_host"]


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a public address (``None`` when it is)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "an unparseable address"
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            candidates.append(ip.sixtofour)
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 well-known prefix
            candidates.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    for candidate in candidates:
        for name, flag in (
            ("loopback", candidate.is_loopback),
            ("private", candidate.is_private),
            ("link-local", candidate.is_link_local),
            ("multicast", candidate.is_multicast),
            ("reserved", candidate.is_reserved),
            ("unspecified", candidate.is_unspecified),
        ):
            if flag:
                return f"a {name} address"
        if not candidate.is_global:
            return "not a public address"
    return None


def resolve_host(host: str, port: int, timeout: float) -> list[str]:
    """The addresses ``host`` resolves to (IP literals as they are), within ``timeout`` seconds."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]
    except ValueError:
        pass
    result: dict[str, Any] = {}

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            result["addresses"] = list(dict.fromkeys(str(info[4][0]) for info in infos))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            result["error"] = exc

    worker = threading.Thread(target=lookup, name="sdrest-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"resolving {host} timed out")
    if "error" in result:
        raise result["error"]
    return result["addresses"]


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def public_host_problem(host: str, addresses: list[str]) -> str | None:
    """Why ``host`` (resolving to ``addresses``) is not a public host, for a message: the kind of
    address for an IP literal, only "not a public host" for a name (never what an internal name
    resolves to: that would be a free DNS probe). ``None`` when every address is public."""
    for address in addresses:
        problem = address_problem(address)
        if problem:
            return problem if is_ip_literal(host) else "not a public host"
    return None
