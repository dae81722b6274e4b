"""install.sh --service and uninstall.sh, for real: a system user, a hardened systemd unit that
``systemd-analyze verify`` accepts, the service's command line run as that user, then removal
(models and data kept unless --purge).

The build step is skipped (``--skip-build``): the test's virtual environment points at the
sdrest already installed for the test run, as after a first ``./install.sh``.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"
HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "CapabilityBoundingSet=",
    "RestrictSUIDSGID=yes",
    "SystemCallFilter=@system-service",
    "UMask=0077",
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs a system user and a unit: needs root (CI is)")


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / script), *args], capture_output=True, text=True, timeout=300)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture()
def layout(tmp_path: Path) -> Iterator[dict[str, Path | str]]:
    """Paths of one service install, and a venv holding the test run's sdrest."""
    venv = tmp_path / "venv"
    # From the system's Python, which the service user can run (the test run's may be under /root).
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (venv / "bin" / "sdrest").symlink_to(Path(sys.executable).parent / "sdrest")
    user = f"sdrest-t{os.getpid() % 100000}"
    paths: dict[str, Path | str] = {
        "venv": venv,
        "units": tmp_path / "units",
        "data": tmp_path / "srv" / "data",
        "models": tmp_path / "srv" / "models",
        "config": tmp_path / "etc" / "config.yaml",
        "user": user,
    }
    # The service user must be able to reach its folders (pytest's tmp folders are 0700).
    for folder in (tmp_path, tmp_path.parent, tmp_path.parent.parent):
        folder.chmod(folder.stat().st_mode | 0o011)
    yield paths
    if _user_exists(user):
        subprocess.run(["userdel", user], check=False)


def _install(paths: dict[str, Path | str], *extra: str) -> subprocess.CompletedProcess[str]:
    return _run(
        "install.sh",
        *extra,
        "--skip-build",
        "--service",
        "--venv",
        str(paths["venv"]),
        "--service-user",
        str(paths["user"]),
        "--unit-dir",
        str(paths["units"]),
        "--data-dir",
        str(paths["data"]),
        "--models-dir",
        str(paths["models"]),
        "--config",
        str(paths["config"]),
    )


def test_service_install_is_hardened_verified_and_uninstalls_keeping_data(layout) -> None:
    result = _install(layout)
    assert result.returncode == 0, result.stdout + result.stderr
    unit = Path(layout["units"]) / "sdrest.service"
    text = unit.read_text()
    for directive in HARDENING:
        assert f"\n{directive}\n" in text, directive
    data, models, config = Path(layout["data"]), Path(layout["models"]), Path(layout["config"])
    assert f"\nReadWritePaths={data} {models} {data / 'outputs'}\n" in text
    assert f"\nUser={layout['user']}\n" in text and "\nPrivateDevices=yes\n" in text  # a CPU build
    assert "@" not in "".join(line for line in text.splitlines() if not line.startswith(("#", "SystemCallFilter")))

    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    assert "sdrest.service" not in verify.stderr, verify.stderr  # no warning about our unit

    account = pwd.getpwnam(str(layout["user"]))
    assert account.pw_shell == "/usr/sbin/nologin" and account.pw_uid < 1000
    assert data.stat().st_uid == account.pw_uid and stat.S_IMODE(data.stat().st_mode) == 0o750
    assert (models / "checkpoints").stat().st_uid == account.pw_uid
    assert stat.S_IMODE(config.stat().st_mode) == 0o640 and config.stat().st_gid == account.pw_gid

    # What the unit lets the service user do is enough for what the server does.
    reach = subprocess.run(
        [
            "runuser",
            "-u",
            str(layout["user"]),
            "--",
            "sh",
            "-c",
            'test -r "$1" && test -w "$2" && test -w "$3" && test -w "$4"',
            "sh",
            str(config),
            str(data),
            str(data / "outputs"),
            str(models / "checkpoints"),
        ],
        timeout=60,
    )
    assert reach.returncode == 0
    config.write_text(config.read_text().replace("port: 8080", "port: 8181"))

    # Re-running keeps the user and the edited settings.
    again = _install(layout)
    assert again.returncode == 0, again.stderr
    assert "port: 8181" in config.read_text() and pwd.getpwnam(str(layout["user"])).pw_uid == account.pw_uid

    (data / "jobs.sqlite3").write_bytes(b"the jobs")  # what a running service leaves
    removed = _run("uninstall.sh", "--unit-dir", str(layout["units"]))
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not unit.exists() and not Path(layout["venv"]).exists() and not _user_exists(str(layout["user"]))
    assert (data / "jobs.sqlite3").exists() and (models / "checkpoints").is_dir() and config.exists()


def test_service_install_refuses_a_venv_its_user_cannot_run(layout, tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    Path(layout["venv"]).rename(private / "venv")
    layout["venv"] = private / "venv"
    result = _install(layout)
    assert result.returncode == 1 and f"cannot run {private / 'venv'}/bin/python" in result.stderr
    assert not (Path(layout["units"]) / "sdrest.service").exists()


def test_uninstall_purge_removes_data_models_and_settings(layout) -> None:
    installed = _install(layout)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    removed = _run("uninstall.sh", "--unit-dir", str(layout["units"]), "--purge")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    for key in ("data", "models", "config", "venv"):
        assert not Path(layout[key]).exists(), key
    assert not _user_exists(str(layout["user"]))


def test_uninstall_refuses_to_remove_system_folders(tmp_path: Path) -> None:
    (tmp_path / "venv").mkdir()
    result = _run(
        "uninstall.sh",
        "--venv",
        str(tmp_path / "venv"),
        "--data-dir",
        "/var",
        "--models-dir",
        str(tmp_path / "models"),
        "--unit-dir",
        str(tmp_path / "units"),
        "--purge",
    )
    assert result.returncode != 0 and "refusing to remove /var" in result.stderr
    assert Path("/var").is_dir()


def test_service_install_needs_root_and_usage_is_the_header() -> None:
    usage = _run("install.sh", "--help")
    lines = (ROOT / "install.sh").read_text().splitlines()[1:]
    comment = lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]
    header = [line[2:] if line.startswith("# ") else line[1:] for line in comment]
    assert usage.returncode == 0 and usage.stdout.splitlines() == header
    assert "--service" in usage.stdout and "--purge" in _run("uninstall.sh", "--help").stdout
    bad = _run("install.sh", "--frobnicate")
    assert bad.returncode == 2 and "unknown option --frobnicate" in bad.stderr


def _fake_cuda(root: Path) -> Path:
    """A system CUDA toolkit as the build's check sees one: nvcc, cuBLAS's header and library."""
    for folder, name in (("bin", "nvcc"), ("include", "cublas_v2.h"), ("lib64", "libcublas.so.12")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_text("")
    return root


def test_cuda_dry_run_builds_with_a_complete_system_toolkit(tmp_path: Path) -> None:
    cuda = _fake_cuda(tmp_path / "cuda-12.8")
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["bash", str(ROOT / "install.sh"), "--cuda", "--dry-run", "--venv", str(venv)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CUDA_PATH": str(cuda)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"CUDA toolkit: the system's, at {cuda}" in result.stdout
    assert '-DSD_CUDA=ON -DSDREST_CUDA_TOOLKIT=auto"' in result.stdout
    assert f'{venv}/bin/python -m pip install "{ROOT}[gpu]"' in result.stdout  # its own runtime, no wheels
    assert not venv.exists()  # a dry run changes nothing


def test_cuda_dry_run_can_ask_for_the_wheels(tmp_path: Path) -> None:
    env = {**os.environ, "CUDA_PATH": str(_fake_cuda(tmp_path / "cuda"))}
    result = subprocess.run(
        [
            "bash",
            str(ROOT / "install.sh"),
            "--cuda",
            "--cuda-toolkit",
            "wheels",
            "--dry-run",
            "--venv",
            str(tmp_path / "venv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "CUDA toolkit: NVIDIA's CUDA 13 wheels" in result.stdout
    assert "-DSDREST_CUDA_TOOLKIT=wheels" in result.stdout
    assert '[gpu,cuda]"' in result.stdout  # the runtime wheels (sdrest[cuda]) with them


def test_cuda_toolkit_option_is_checked() -> None:
    bad = _run("install.sh", "--cuda", "--cuda-toolkit", "conda", "--dry-run")
    assert bad.returncode == 2 and "--cuda-toolkit must be auto, system or wheels, not 'conda'" in bad.stderr
    alone = _run("install.sh", "--cuda-toolkit", "wheels", "--dry-run")
    assert alone.returncode == 2 and "--cuda-toolkit goes with --cuda" in alone.stderr


def test_worker_service_beside_the_server_takes_its_secrets_from_a_0600_environment_file(layout) -> None:
    installed = _install(layout, "--worker-service")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    units, config = Path(layout["units"]), Path(layout["config"])
    env_file = config.parent / "sdrest.env"
    venv, user = Path(layout["venv"]), str(layout["user"])
    texts = {name: (units / f"{name}.service").read_text() for name in ("sdrest", "sdrest-worker")}
    for (name, text), command in zip(texts.items(), ("serve", "worker"), strict=True):
        assert f"\nExecStart={venv}/bin/sdrest {command} --config {config} --data-dir " in text, name
        assert f"\nEnvironmentFile=-{env_file}\n" in text and f"\nUser={user}\n" in text
        for directive in HARDENING:
            assert f"\n{directive}\n" in text, (name, directive)
    assert "\nDescription=sdrest worker: generation worker of an sdrest cluster\n" in texts["sdrest-worker"]
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(units / "sdrest-worker.service")], capture_output=True, text=True, timeout=120
    )
    assert verify.returncode == 0 and "sdrest-worker.service" not in verify.stderr, verify.stderr

    # The secrets' file: root's alone (systemd reads it for the service), kept across re-runs.
    assert env_file.stat().st_uid == 0 and stat.S_IMODE(env_file.stat().st_mode) == 0o600
    env_file.write_text("SDREST_STORE=postgresql://sdrest:db-s3cret@db.internal/sdrest\n")
    again = _install(layout, "--worker-service")
    assert again.returncode == 0, again.stderr
    assert "db-s3cret" in env_file.read_text() and stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert all("db-s3cret" not in (units / f"{n}.service").read_text() for n in ("sdrest", "sdrest-worker"))
    unreadable = subprocess.run(["runuser", "-u", user, "--", "cat", str(env_file)], capture_output=True, timeout=60)
    assert unreadable.returncode != 0

    # The worker's command line is one `sdrest worker` takes, and the environment gives it the store.
    exec_line = next(line for line in texts["sdrest-worker"].splitlines() if line.startswith("ExecStart="))
    resolved = subprocess.run(
        [*exec_line.removeprefix("ExecStart=").split(), "--print-config"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SDREST_STORE": "postgresql://sdrest:db-s3cret@db.internal/sdrest"},
    )
    assert resolved.returncode == 0, resolved.stderr
    assert '"store": "postgresql://sdrest:***@db.internal/sdrest"' in resolved.stdout

    removed = _run("uninstall.sh", "--unit-dir", str(units), "--purge")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not any(units.glob("*.service")) and not env_file.exists() and not _user_exists(user)


def test_postgres_extra_is_installed_with_the_build(layout, tmp_path: Path) -> None:
    planned = _run("install.sh", "--postgres", "--dry-run", "--venv", str(tmp_path / "new"))
    assert planned.returncode == 0, planned.stderr
    assert f'{tmp_path / "new"}/bin/python -m pip install "{ROOT}[postgres]"' in planned.stdout
    # Without a build, a venv that lacks it is refused rather than left unable to open a postgresql:// store.
    kept = _run("install.sh", "--skip-build", "--postgres", "--venv", str(layout["venv"]))
    assert kept.returncode == 1 and "lacks the postgres extra (psycopg, psycopg-pool)" in kept.stderr
