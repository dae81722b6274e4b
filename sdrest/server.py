"""Serve the app with Waitress."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from sdrest.settings import Settings

log = logging.getLogger("sdrest")


def serve(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM; returns the exit code."""
    from waitress.server import create_server

    from sdrest.app import close_app, create_app
    from sdrest.connections import CLEANUP_SECONDS, IDLE_SECONDS, limit_per_client
    from sdrest.logs import setup_logging

    setup_logging(settings)
    app = create_app(settings)
    svc = app.extensions["sdrest"]
    # Ordinary requests get http_threads; long-lived ones (event streams, wait=true) get
    # their own bounded share on top, so they can never use up the ordinary ones.
    threads = settings.http_threads + settings.max_event_streams
    server: Any = create_server(
        app,
        host=settings.host,
        port=settings.port,
        threads=threads,
        channel_timeout=IDLE_SECONDS,
        cleanup_interval=CLEANUP_SECONDS,
        connection_limit=max(100, threads * 2),
        ident="sdrest",
        # Refuse big bodies while reading them, before they are buffered
        # (Waitress' own default is 1 GiB, and auth runs only afterwards).
        # Slack up to twice the limit: a body somewhat over --max-body-mb
        # still reaches the app, which answers its JSON 413 naming the limit.
        max_request_body_size=int(2 * settings.max_body_mb * 2**20) + 2**20,
        # Waitress drops X-Forwarded-* by default; with --trusted-proxy the app
        # sees them and believes them only from those addresses (auth.web).
        clear_untrusted_proxy_headers=not settings.trusted_proxy,
        # Keep reading while a request runs, so a closed connection is
        # seen (environ["waitress.client_disconnected"]): A1111/OpenAI
        # calls cancel their job when their client goes (compat.jobs).
        channel_request_lookahead=1,
    )
    # One address may take half the connections at most, so a slow client leaves room for others.
    per_client = settings.max_connections_per_client
    limit_per_client(
        server, threads if per_client is None else per_client, app.extensions["sdrest.auth"].trusted_proxies
    )
    stopping = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("stopping (signal %d)", signum)
            # Leave Waitress's loop the way Ctrl+C does (it catches SystemExit and stops its
            # threads). Closing only the listening socket left the loop running for as long as
            # any client kept a connection open: an idle keep-alive, an event stream.
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info(
        "sdrest listening on http://%s:%s (data %s, outputs %s, models %s)",
        settings.host,
        server.effective_port,
        svc.settings.data_dir,
        svc.settings.outputs_dir,
        svc.settings.models_dir,
    )
    try:
        server.run()
    except (OSError, ValueError):
        if not stopping.is_set():
            raise
    except SystemExit:
        pass  # the signal came outside Waitress's loop (it catches its own)
    finally:
        server.close()
        close_app(app)
    return 0
