"""Requests a browser makes on behalf of a page the server did not serve.

Two attacks reach a server on localhost from any web page its user visits:

* **DNS rebinding**: the page's own name (evil.example) is re-pointed at 127.0.0.1, so the
  browser treats the server as same-origin and the page reads every answer. The server sees
  ``Host: evil.example``; so, whatever ``--auth`` is (a rebinding page acts as whoever the
  address or a guest login makes it), it answers only to loopback names, the ``--host``
  address and ``--allowed-hosts``. With a wildcard ``--host`` and no ``--allowed-hosts`` any
  name is served (the operator chose to serve the network), which settings refuse for
  ``--auth none``: there a rebinding page would act as admin.
* **Cross-site requests (CSRF)**: the page posts a form or a ``fetch(..., {mode: "no-cors"})``
  to the server. Without credentials to steal, such a request still queues jobs or deletes them
  where no credentials are needed (``--auth none``, guests) or where the browser adds them by
  itself (cookies).

The rule for state-changing requests (POST, PUT, PATCH, DELETE) that carry no bearer token
(``Authorization: Bearer ...``) or ``X-API-Key`` header (the only ambient authority is the
address, a guest login, a cookie, or Basic credentials, which browsers store and send by
themselves):

1. an ``Origin`` header must be this server's own origin or one of ``--cors-origins``;
   ``Origin: null`` (sandboxed frames, privacy redirects) is refused;
2. a POST that shows any sign of a browser (``Origin``, ``Cookie`` or ``Sec-Fetch-Site``) must
   also be something no page can send cross-site without a CORS preflight: a JSON body, or an
   ``X-Requested-With`` or ``X-CSRF-TOKEN`` header. (PUT, PATCH and DELETE always need a
   preflight, and rule 1 already decided those.)

A request with neither ``Origin`` nor cookies nor fetch metadata comes from a program (curl,
an SDK such as ``openai``'s multipart ``images.edit``): no page can make a browser send one, so
it is not cross-site and passes.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from flask import Request

from sdrest.auth.errors import NotPermitted
from sdrest.settings import WILDCARD_HOSTS, Settings

#: Names that always mean this machine (RFC 6761: all of *.localhost too).
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Headers a page can only send cross-site after a CORS preflight (which foreign origins fail).
PREFLIGHTED_HEADERS = ("X-Requested-With", "X-CSRF-TOKEN")


def _split_list(raw: str | None) -> list[str]:
    return [part.strip().lower() for part in (raw or "").split(",") if part.strip()]


def host_name(host: str) -> str:
    """``Host`` without its port, lower case, IPv6 brackets removed."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


class OriginPolicy:
    """Host and cross-site checks for one server's settings."""

    def __init__(self, settings: Settings) -> None:
        allowed = set(_split_list(settings.allowed_hosts))
        self.any_host = "*" in allowed or (settings.host.strip() in WILDCARD_HOSTS and not allowed)
        self.hosts = frozenset(LOOPBACK_NAMES | allowed | {host_name(settings.host)})
        origins = [o.rstrip("/").lower() for o in getattr(settings, "cors_origin_list", [])]
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)

    def host_allowed(self, host: str) -> bool:
        if self.any_host:
            return True
        name = host_name(host)
        if name in self.hosts or name.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def origin_allowed(self, origin: str, host: str) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if origin == "null":
            return False
        if self.any_origin or origin in self.origins:
            return True
        parts = urlsplit(origin)
        # Same origin: the page was served by this server under the name the browser used.
        return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc == host.strip().lower()

    def check(self, request: Request) -> None:
        """Raise :class:`NotPermitted` (a 403) for a request a foreign page may have made."""
        host = request.headers.get("Host", "")
        if not self.host_allowed(host):
            raise NotPermitted(
                "host_not_allowed",
                f"Host: {host_name(host)!r} is not a name of this server (see --allowed-hosts)",
                "Host",
            )
        if request.method not in STATE_CHANGING:
            return
        if _bearer(request) or request.headers.get("X-API-Key"):
            return  # credentials a page cannot add by itself: not ambient, not cross-site
        origin = request.headers.get("Origin")
        if origin is not None and not self.origin_allowed(origin, host):
            raise NotPermitted(
                "cross_origin_refused",
                f"Origin: {origin[:100]!r} may not change anything here (see --cors-origins)",
                "Origin",
            )
        browser = origin is not None or "Cookie" in request.headers or "Sec-Fetch-Site" in request.headers
        if request.method == "POST" and browser and not _preflighted(request):
            raise NotPermitted(
                "csrf_refused", "a browser request needs a JSON body or an X-Requested-With header", "Content-Type"
            )


def refuse_cross_site_work(request: Request, field: str) -> None:
    """For a GET that does real work (hashing gigabytes): refuse it when a browser says another
    site's page made it (an ``<img src>`` on any page would otherwise start it, and with
    ``--auth none`` the address alone is admin). Programs send no fetch metadata and pass."""
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site not in ("", "same-origin", "none"):
        raise NotPermitted("cross_site_refused", f"{field}: a page of another site may not start this work", field)


def _bearer(request: Request) -> bool:
    """A bearer token: the one ``Authorization`` a page cannot make a browser attach (Basic
    credentials the browser remembers, and any other scheme, count as ambient)."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _preflighted(request: Request) -> bool:
    mimetype = request.mimetype or ""
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return True
    return any(request.headers.get(name) for name in PREFLIGHTED_HEADERS)
