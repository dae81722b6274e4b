"""No absolute server path reaches a client: not in any route's answer, job record, event or
image metadata. A real server runs jobs that use every kind of model file (checkpoint, VAE,
TAESD, LoRA, ESRGAN, input images), then every GET route of the app is called and everything
that came back is searched for the server's folders."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import requests

from helpers import test_image
from sdrest.app import create_app
from sdrest.outputs import read_parameters
from sdrest.settings import Settings
from server_helpers import FAST, Server, link_models, png_base64

pytestmark = pytest.mark.slow

#: Values for the path parameters of GET routes (anything else fails the test: add it here).
PATH_VALUES = {
    "model_id": "checkpoint/sd1.safetensors",
    "name": "fast",
    "kind": "prompts",
    "index": "0",
    "path": "index.html",
    "filename": "x",
    "download_id": "no-such-download",  # a 404 must not show a path either
}


@pytest.fixture(scope="module")
def served(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("paths")
    models_dir = link_models(models, root / "models")
    (models_dir / "vae").mkdir()
    os.link(models.vae, models_dir / "vae" / "vae.safetensors")
    (models_dir / "presets").mkdir()
    (models_dir / "presets" / "fast.json").write_text(json.dumps({"steps": 1, "width": 64, "height": 64}))
    (models_dir / "prompts").mkdir()
    (models_dir / "prompts" / "photo.txt").write_text("a photo of {prompt}")
    server = Server(root, models_dir, "--model", "sd1").start()
    answers: list[str] = []
    jobs = []
    for path, body in (
        ("/api/v1/generate", {**FAST, "prompt": "apple <lora:style:0.5>", "vae": "vae", "taesd": "taesd"}),
        ("/api/v1/generate", {**FAST, "preset": "fast", "prompt_template": "photo", "seed": 4}),
        ("/api/v1/generate/img2img", {**FAST, "init_image": png_base64(test_image(64)), "wait": True}),
        ("/api/v1/upscale", {"image": png_base64(test_image(32)), "upscaler": "x4", "wait": True}),
        ("/api/v1/models/load", {"model": "sd1", "vae": "vae", "wait": True}),
        ("/sdapi/v1/txt2img", {"prompt": "pear", "steps": 1, "width": 64, "height": 64}),
    ):
        response = server.post(path, json=body)
        assert response.status_code == 200, (path, response.text)
        answers.append(response.text)
        if "job_id" in response.json():
            jobs.append(response.json())
    yield server, root, jobs, answers
    server.stop()


def _forbidden(root: Path, models) -> list[str]:
    """The server's folders as they could appear in text (resolved and as given)."""
    folders = {str(root), str(root.resolve()), str(models.root), str(Path(models.root).resolve())}
    return sorted(folders, key=len, reverse=True)


def _leaks(text: str, folders: list[str]) -> list[str]:
    return [
        text[max(0, m.start() - 80) : m.end() + 80] for folder in folders for m in re.finditer(re.escape(folder), text)
    ]


def test_no_route_answers_with_a_server_path(served, models, tmp_path) -> None:
    server, root, jobs, answers = served
    folders = _forbidden(root, models)
    app = create_app(Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models"), start_worker=False)
    texts = {f"POST answer {i}": text for i, text in enumerate(answers)}
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint in ("events.all_events", "events.job_events"):
            continue
        values = {**PATH_VALUES, "job_id": jobs[0]["job_id"]}
        missing = set(rule.arguments) - set(values)
        assert not missing, f"{rule.rule}: add a value for {missing} to PATH_VALUES"
        url = rule.rule
        for name in rule.arguments:
            url = re.sub(rf"<(?:[a-z]+:)?{name}>", values[name], url)
        for query in ("", "?hashes=true&base64=true"):
            response = server.get(url + query)
            if response.headers.get("Content-Type", "").startswith(("application/json", "text/")):
                texts[f"GET {url}{query} ({response.status_code})"] = response.text
    leaks = {where: found for where, text in texts.items() if (found := _leaks(text, folders))}
    assert not leaks, json.dumps(leaks, indent=1)
    assert len(texts) > 40  # the walk really reached the routes


def test_no_event_carries_a_server_path(served, models) -> None:
    server, root, jobs, _ = served
    folders = _forbidden(root, models)
    seen, finished = [], 0
    with requests.get(server.url("/api/v1/events"), params={"last_event_id": 0}, stream=True, timeout=60) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            seen.append(line)
            finished += line in ("event: completed", "event: failed")
            if finished >= len(jobs):
                break
    text = "\n".join(seen)
    assert finished >= len(jobs) and not _leaks(text, folders), _leaks(text, folders)


def test_no_image_metadata_carries_a_server_path(served, models) -> None:
    server, root, jobs, _ = served
    folders = _forbidden(root, models)
    outputs = server.data_dir / "outputs"
    files = [p for p in outputs.rglob("*") if p.is_file() and p.suffix in (".png", ".jpg", ".webp", ".json")]
    assert len(files) >= 2 * len(jobs)  # each image and its sidecar
    for path in files:
        if path.suffix == ".json":
            text = path.read_text()
        else:
            infotext, metadata = read_parameters(path)
            text = f"{infotext}\n{json.dumps(metadata)}"
            assert metadata is not None, path
        assert not _leaks(text, folders), (path.name, _leaks(text, folders))


def test_the_search_would_find_a_leak(served, models) -> None:
    """The search itself works: a path inside the models folder is found."""
    _, root, _, _ = served
    folders = _forbidden(root, models)
    assert _leaks(json.dumps({"model_path": str(root / "models" / "checkpoints" / "sd1.safetensors")}), folders)
    shutil.disk_usage(root)  # the folder exists: the search looked for real paths
