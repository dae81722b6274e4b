"""The spec's client examples, run as it prints them (only the server's address changed)
against a real server: Python ``requests`` and cURL here, the browser ``fetch`` one in
tests/webui/test_spec_examples_js.py. examples/ holds them verbatim."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from server_helpers import Server, sd1_server
from spec_text import EXAMPLES, SECTIONS, SPEC, example, spec_example


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_examples_are_the_spec_text_verbatim(name: str) -> None:
    if not SPEC.is_file():
        pytest.skip(f"the spec is not beside this checkout ({SPEC})")
    assert (EXAMPLES / name).read_text(encoding="utf-8") == spec_example(name)


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    # 20 steps at 512x512 take minutes on a small CPU: let a waiting request wait that long.
    yield from sd1_server(models, tmp_path_factory, "spec-examples", "--wait-timeout", "3600")


def _assert_generated_png(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (512, 512)
    assert np.asarray(image.convert("RGB")).std() > 1  # a picture, not a blank


@pytest.mark.slow
def test_python_requests_example_saves_the_image(server: Server, tmp_path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example("generate_requests.py", server.base))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr
    _assert_generated_png((tmp_path / "generated_image.png").read_bytes())


@pytest.mark.slow
def test_curl_example_generates_checks_the_job_and_lists_models(server: Server, tmp_path) -> None:
    generate, check, listing = example("generate_curl.sh", server.base).strip().split("\n\n")

    def run(command: str) -> dict:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=3600
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    job = run(generate)
    assert job["status"] == "completed"
    _assert_generated_png(base64.b64decode(job["images"][0]["data"]))
    # The reader puts the id from the first answer in place of {job_id}.
    status = run(check.replace("{job_id}", job["job_id"]))
    assert status["job_id"] == job["job_id"] and status["status"] == "completed"
    assert status["images"][0]["width"] == 512
    models = run(listing)
    assert "sd1" in {m["name"] for m in models["models"]}


@pytest.mark.slow
def test_progress_example_prints_live_steps_and_saves_the_image(server: Server, tmp_path) -> None:
    # A job ahead in the queue: ours is still queued when its event stream opens, so every
    # sampling step of it is seen live.
    ahead = server.submit(steps=12, seed=8)
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "progress_sse.py"),
            "a red apple",
            "--server",
            server.base,
            "--width",
            "64",
            "--height",
            "64",
            "--steps",
            "4",
            "--seed",
            "5",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sampling: step 4/4" in result.stdout and "\ncompleted\n" in result.stdout
    assert "saved progress-0.png (seed 5)" in result.stdout
    image = Image.open(tmp_path / "progress-0.png")
    assert image.size == (64, 64)
    assert server.wait_job(ahead["job_id"])["status"] == "completed"


def test_progress_example_reports_a_refusal(server: Server, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "progress_sse.py"), "x", "--server", server.base, "--width", "63"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1 and result.stderr.startswith("refused: width")
