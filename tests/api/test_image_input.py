"""sdrest.api.image_input: images given as base64, data URLs, uploads and http(s) URLs."""

from __future__ import annotations

import base64
import io
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage

from helpers import test_image
from sdrest.api import url_fetch
from sdrest.api.image_input import ImageInputError, ImageLimits, decode_image, fit_to


def encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


PNG = encoded(test_image())
PNG_B64 = base64.b64encode(PNG).decode()


def expect_error(
    value: object, code: str, status: int, field: str = "init_image", limits: ImageLimits | None = None
) -> ImageInputError:
    with pytest.raises(ImageInputError) as info:
        decode_image(value, field, limits or ImageLimits())
    error = info.value
    assert (error.code, error.status, error.field) == (code, status, field), str(error)
    assert str(error).startswith(f"{field}: ")
    assert isinstance(error, ValueError)
    assert len(str(error)) < 400  # never echoes the payload
    return error


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.convert("RGB").tobytes() == b.convert("RGB").tobytes()


# ------------------------------------------------------------------------------------ base64


def test_plain_base64() -> None:
    image = decode_image(PNG_B64, "init_image", ImageLimits())
    assert same_pixels(image, test_image())


def test_data_url_and_whitespace_and_urlsafe() -> None:
    assert same_pixels(decode_image(f"data:image/png;base64,{PNG_B64}", "f", ImageLimits()), test_image())
    wrapped = "\n".join(PNG_B64[i : i + 76] for i in range(0, len(PNG_B64), 76))
    assert same_pixels(decode_image(f"  {wrapped}\n", "f", ImageLimits()), test_image())
    urlsafe = base64.urlsafe_b64encode(PNG).decode().rstrip("=")
    assert same_pixels(decode_image(urlsafe, "f", ImageLimits()), test_image())


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP", "GIF"])
def test_other_formats(fmt: str) -> None:
    image = decode_image(base64.b64encode(encoded(test_image(), fmt)).decode(), "f", ImageLimits())
    assert image.size == (64, 64)


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    image = decode_image(buffer.getvalue(), "f", ImageLimits())
    assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_exif_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    data = encoded(Image.new("RGB", (40, 20), "white"), "JPEG", exif=exif)
    assert decode_image(data, "f", ImageLimits()).size == (20, 40)


def test_broken_base64() -> None:
    error = expect_error("this is not base64!!" + "A" * 5000, "invalid_base64", 400)
    assert "AAAAAAAAAA" not in str(error)


def test_non_image_bytes() -> None:
    expect_error(base64.b64encode(b"hello world, not an image at all").decode(), "invalid_image", 422)


def test_unsupported_image_format_is_invalid() -> None:
    tiff = base64.b64encode(encoded(test_image(), "TIFF")).decode()
    expect_error(tiff, "invalid_image", 422)
    expect_error(f"data:image/tiff;base64,{tiff}", "unsupported_media_type", 415)


def test_data_url_with_non_image_type() -> None:
    expect_error(f"data:text/plain;base64,{PNG_B64}", "unsupported_media_type", 415)
    expect_error("data:image/png;base64", "invalid_base64", 400)


def test_truncated_png() -> None:
    truncated = encoded(test_image(256))
    truncated = truncated[: len(truncated) // 2]
    error = expect_error(base64.b64encode(truncated).decode(), "invalid_image", 422)
    assert "truncated" in str(error)


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_decompression_bomb() -> None:
    bomb = _png_declaring(100_000, 100_000)
    assert len(bomb) < 100
    expect_error(base64.b64encode(bomb).decode(), "image_too_large", 413)
    # below Pillow's own limit, our max_pixels still applies, before any decoding
    expect_error(_png_declaring(5000, 5000), "image_too_large", 413)
    expect_error(PNG_B64, "image_too_large", 413, limits=ImageLimits(max_pixels=64 * 64 - 1))
    assert decode_image(PNG_B64, "f", ImageLimits(max_pixels=64 * 64)).size == (64, 64)


def test_oversize_bytes() -> None:
    limits = ImageLimits(max_bytes=len(PNG) - 1)
    expect_error(PNG_B64, "image_too_large", 413, limits=limits)
    expect_error(f"data:image/png;base64,{PNG_B64}", "image_too_large", 413, limits=limits)
    expect_error(PNG, "image_too_large", 413, limits=limits)
    assert decode_image(PNG_B64, "f", ImageLimits(max_bytes=len(PNG))).size == (64, 64)


def test_wrong_types_and_empty() -> None:
    expect_error(None, "invalid_image", 400)
    expect_error(12345, "invalid_image", 400)
    expect_error("   ", "invalid_image", 400)


def test_field_name_in_error() -> None:
    error = expect_error("!!!", "invalid_base64", 400, field="ref_images[1]")
    assert error.to_dict() == {"code": "invalid_base64", "field": "ref_images[1]", "message": str(error)}


# ------------------------------------------------------------------------------------ uploads


def test_multipart_upload() -> None:
    upload = FileStorage(io.BytesIO(PNG), filename="x.png", content_type="image/png")
    assert same_pixels(decode_image(upload, "mask_image", ImageLimits()), test_image())
    # curl's default type for unknown extensions is fine too
    upload = FileStorage(
        io.BytesIO(encoded(test_image(), "JPEG")), filename="x", content_type="application/octet-stream"
    )
    assert decode_image(upload, "mask_image", ImageLimits()).size == (64, 64)


def test_upload_errors() -> None:
    expect_error(
        FileStorage(io.BytesIO(PNG), filename="x.png", content_type="image/png"),
        "image_too_large",
        413,
        limits=ImageLimits(max_bytes=100),
    )
    expect_error(
        FileStorage(io.BytesIO(b""), filename="", content_type="application/octet-stream"), "invalid_image", 400
    )
    expect_error(
        FileStorage(io.BytesIO(b"<html></html>"), filename="x.html", content_type="text/html"),
        "unsupported_media_type",
        415,
    )
    expect_error(FileStorage(io.BytesIO(PNG[:200]), filename="x.png", content_type="image/png"), "invalid_image", 422)


def test_fit_to() -> None:
    image = test_image()
    assert fit_to(image, 64, 64) is image
    stretched = fit_to(image, 128, 32)
    assert stretched.size == (128, 32)
    with pytest.raises(ValueError):
        fit_to(image, 0, 10)


# ------------------------------------------------------------------------------------ URLs

RELEASE = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: object) -> None:
        pass

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "image/png",
        length: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        path = self.path
        try:
            if path == "/img.png":
                self._send(200, PNG)
            elif path == "/no-length.png":
                self._send(200, PNG, length=False)
            elif path == "/missing":
                self._send(404, b"not found", "text/plain")
            elif path == "/page":
                self._send(200, b"<html>hi</html>", "text/html; charset=utf-8")
            elif path == "/big-length":  # refused from the header, before reading the body
                self._send(200, b"\0" * 100, length=False, headers={"Content-Length": str(10**9)})
            elif path == "/endless":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                for _ in range(200):
                    self.wfile.write(b"\0" * 1000)
            elif path == "/slow":
                RELEASE.wait(5)
                self._send(200, PNG)
            elif path == "/drip":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                for byte in PNG:
                    if RELEASE.wait(0.05):
                        break
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            elif path == "/to-img":
                self._send(302, b"", headers={"Location": "/img.png"})
            elif path == "/to-loopback":
                self._send(302, b"", headers={"Location": f"http://127.0.0.1:{port}/img.png"})
            elif path.startswith("/loop"):
                n = int(path[len("/loop") :] or 0)
                self._send(307, b"", headers={"Location": f"/loop{n + 1}"})
            else:
                self._send(500, b"?", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    RELEASE.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    RELEASE.set()
    httpd.shutdown()
    httpd.server_close()


ANY = ImageLimits(url_policy="any", url_timeout=5.0)


def test_url_fetch(server: str) -> None:
    assert same_pixels(decode_image(f"{server}/img.png", "init_image", ANY), test_image())
    assert same_pixels(decode_image(f"{server}/no-length.png", "init_image", ANY), test_image())
    assert same_pixels(decode_image(f"{server}/to-img", "init_image", ANY), test_image())


def test_url_policy_public_refuses_loopback(server: str) -> None:
    error = expect_error(f"{server}/img.png", "url_not_allowed", 400, limits=ImageLimits(url_policy="public"))
    assert "127.0.0.1" in str(error)
    expect_error("http://localhost:1/x.png", "url_not_allowed", 400)  # via DNS, default policy
    expect_error("http://[::ffff:127.0.0.1]:1/x.png", "url_not_allowed", 400)
    expect_error("http://169.254.169.254/latest/meta-data", "url_not_allowed", 400)
    expect_error("http://10.1.2.3/x.png", "url_not_allowed", 400)


def test_url_policy_off(server: str) -> None:
    expect_error(f"{server}/img.png", "url_not_allowed", 400, limits=ImageLimits(url_policy="off"))


def test_bad_schemes_and_urls() -> None:
    expect_error("ftp://example.com/x.png", "url_not_allowed", 400, limits=ANY)
    expect_error("file:///etc/passwd", "url_not_allowed", 400, limits=ANY)
    expect_error("http://user:secret@127.0.0.1:1/x.png", "invalid_url", 400, limits=ANY)
    expect_error("http://127.0.0.1:99999/x.png", "invalid_url", 400, limits=ANY)
    with pytest.raises(ValueError, match="url_policy"):
        ImageLimits(url_policy="maybe")


def test_http_errors(server: str) -> None:
    error = expect_error(f"{server}/missing", "url_fetch_failed", 422, limits=ANY)
    assert "404" in str(error)
    expect_error(f"{server}/page", "unsupported_media_type", 415, limits=ANY)
    expect_error(f"{server}/loop0", "url_fetch_failed", 422, limits=ANY)
    expect_error("http://127.0.0.1:1/refused.png", "url_fetch_failed", 422, limits=ANY)


def test_streamed_body_over_limit(server: str) -> None:
    limits = ImageLimits(url_policy="any", max_bytes=10_000)
    expect_error(f"{server}/endless", "image_too_large", 413, limits=limits)
    expect_error(f"{server}/big-length", "image_too_large", 413, limits=limits)


def test_slow_server_times_out(server: str) -> None:
    limits = ImageLimits(url_policy="any", url_timeout=0.3)
    error = expect_error(f"{server}/slow", "url_fetch_failed", 422, limits=limits)
    assert "timed out" in str(error)
    # A body dripping one byte every 0.05 s never hits a per-read timeout of 0.3 s: only a
    # deadline for the whole fetch ends it (without one the whole PNG arrives and decodes).
    assert len(PNG) * 0.05 > 10 * limits.url_timeout
    error = expect_error(f"{server}/drip", "url_fetch_failed", 422, limits=limits)
    assert "timed out" in str(error)


@pytest.fixture
def fake_public_dns(monkeypatch: pytest.MonkeyPatch, server: str) -> list[tuple[str, int]]:
    """``*.example.test`` resolve to public addresses; connections to them reach the test server."""
    port = int(server.rsplit(":", 1)[1])
    connects: list[tuple[str, int]] = []
    real_resolve, real_open = url_fetch._resolve, url_fetch._open_socket
    table = {"public.example.test": ["93.184.216.34"], "rebind.example.test": ["93.184.216.34", "127.0.0.1"]}

    def resolve(host: str, port_: int, timeout: float) -> list[str]:
        return table[host] if host in table else real_resolve(host, port_, timeout)

    def open_socket(address: str, port_: int, timeout: float):
        connects.append((address, port_))
        if address == "93.184.216.34":
            return real_open("127.0.0.1", port, timeout)
        return real_open(address, port_, timeout)

    monkeypatch.setattr(url_fetch, "_resolve", resolve)
    monkeypatch.setattr(url_fetch, "_open_socket", open_socket)
    return connects


def test_public_host_allowed_and_connects_to_checked_address(fake_public_dns: list) -> None:
    image = decode_image("http://public.example.test/img.png", "f", ImageLimits(url_policy="public"))
    assert same_pixels(image, test_image())
    assert fake_public_dns == [("93.184.216.34", 80)]  # the checked address, no second lookup


def test_redirect_to_loopback_refused(fake_public_dns: list) -> None:
    public = ImageLimits(url_policy="public")
    error = expect_error("http://public.example.test/to-loopback", "url_not_allowed", 400, limits=public)
    assert "127.0.0.1" in str(error)
    assert fake_public_dns == [("93.184.216.34", 80)]  # never connected to the loopback target
    # a relative redirect on the public host is followed
    assert decode_image("http://public.example.test/to-img", "f", public).size == (64, 64)


def test_every_resolved_address_checked(fake_public_dns: list) -> None:
    expect_error("http://rebind.example.test/img.png", "url_not_allowed", 400, limits=ImageLimits(url_policy="public"))
    assert fake_public_dns == []


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An HTTPS test server on 127.0.0.1 with a self-signed certificate for localhost."""
    import shutil
    import ssl
    import subprocess

    assert shutil.which("openssl"), "the openssl command makes the test certificate (.ci/run installs it)"
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"https://localhost:{httpd.server_address[1]}", str(cert)
    httpd.shutdown()
    httpd.server_close()


def test_https_verifies_certificate_against_host(tls_server: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    url, cert = tls_server
    error = expect_error(f"{url}/img.png", "url_fetch_failed", 422, limits=ANY)  # self-signed: untrusted
    assert "certificate" in str(error).lower()
    real = ssl.create_default_context
    monkeypatch.setattr(url_fetch.ssl, "create_default_context", lambda: real(cafile=cert))
    assert same_pixels(decode_image(f"{url}/img.png", "f", ANY), test_image())
