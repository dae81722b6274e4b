"""Fetching input images by URL: one deadline for a whole request, and no DNS answers echoed."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import Flask

from helpers import test_image
from sdrest.api.image_input import ImageInputError, ImageLimits, decode_image


def _png() -> bytes:
    buffer = io.BytesIO()
    test_image(16).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture()
def http_server():
    body = _png()
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/slow"):
                release.wait(30)  # answers only when the test is done with it
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()


def test_one_request_shares_one_url_deadline(http_server) -> None:
    limits = ImageLimits(url_policy="any", url_timeout=1.0)
    assert decode_image(f"{http_server}/fast.png", "init_image", limits).size == (16, 16)  # no request: own clock
    with Flask(__name__).test_request_context():
        with pytest.raises(ImageInputError, match="timed out"):
            decode_image(f"{http_server}/slow.png", "init_image", limits)
        # The request's budget is spent: even a fast URL is not fetched any more.
        with pytest.raises(ImageInputError, match="timed out"):
            decode_image(f"{http_server}/fast.png", "mask_image", limits)


def test_a_private_host_name_is_refused_without_saying_what_it_resolves_to() -> None:
    with pytest.raises(ImageInputError) as refused:
        decode_image("http://localhost:9/x.png", "init_image", ImageLimits(url_policy="public"))
    assert refused.value.code == "url_not_allowed"
    assert "127.0.0.1" not in str(refused.value) and "::1" not in str(refused.value)


def test_a_missing_name_and_an_internal_one_get_the_same_answer() -> None:
    # Otherwise the fetcher is a DNS oracle: "cannot resolve" for one, "not public" for the other
    # tells a client which internal names exist. (".invalid" never resolves: RFC 2606.)
    answers = []
    for url in ("http://localhost:9/x.png", "http://no-such-host.invalid/x.png"):
        with pytest.raises(ImageInputError) as refused:
            decode_image(url, "init_image", ImageLimits(url_policy="public"))
        answers.append((refused.value.code, refused.value.status, str(refused.value).split(" is not allowed: ")[1]))
    (code, status, first), (code2, status2, second) = answers
    assert (code, status) == (code2, status2) == ("url_not_allowed", 400)
    assert first.replace("localhost", "HOST") == second.replace("no-such-host.invalid", "HOST")
