"""Settings: defaults < config file < environment < flags, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdrest.cli import build_parser
from sdrest.models.types import ModelType
from sdrest.settings import Settings, SettingsError


def _flags(*argv: str) -> dict:
    args = vars(build_parser().parse_args(["serve", *argv]))
    args.pop("command")
    args.pop("print_config")
    return args


def test_defaults() -> None:
    settings = Settings.load({}, environ={})
    assert settings.port == 8080 and settings.host == "127.0.0.1"
    assert settings.checkpoints_path == Path("models/checkpoints")
    assert settings.outputs_dir == Path("data/outputs")


def test_each_source_overrides_the_one_before(tmp_path) -> None:
    config = tmp_path / "sdrest.yaml"
    config.write_text("port: 9000\nthreads: 3\nlog_level: debug\nmodels-dir: /srv/models\n")
    environ = {"SDREST_PORT": "9100", "SDREST_REQUEUE_INTERRUPTED": "true"}
    settings = Settings.load(_flags("--config", str(config), "--port", "9200"), environ=environ)
    assert settings.port == 9200  # flag beats env beats file
    assert settings.threads == 3 and settings.log_level == "debug"  # from the file
    assert settings.models_dir == Path("/srv/models")
    assert settings.requeue_interrupted is True  # from the environment
    assert Settings.load(_flags("--config", str(config)), environ=environ).port == 9100
    assert Settings.load(_flags("--config", str(config)), environ={}).port == 9000


def test_json_config_and_config_from_environment(tmp_path) -> None:
    config = tmp_path / "sdrest.json"
    config.write_text(json.dumps({"port": 9300, "url_fetch": "off"}))
    settings = Settings.load({}, environ={"SDREST_CONFIG": str(config)})
    assert settings.port == 9300 and settings.url_fetch == "off"


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("port: 9000\nbogus: 1\n", ".yaml", "unknown setting 'bogus'"),
        ("port: [1, 2]\n", ".yaml", "not a valid int"),
        ("{not json", ".json", "cannot parse"),
        ("[1, 2]", ".json", "mapping"),
        ("port: 70000\n", ".yaml", "port"),
        ("log_level: loud\n", ".yaml", "log_level"),
    ],
)
def test_bad_config_files(tmp_path, content, suffix, message) -> None:
    config = tmp_path / f"config{suffix}"
    config.write_text(content)
    with pytest.raises(SettingsError, match=message):
        Settings.load({"config": str(config)}, environ={})


def test_bad_environment_values_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="SDREST_PORT"):
        Settings.load({}, environ={"SDREST_PORT": "eighty"})
    with pytest.raises(SettingsError, match="SDREST_REQUEUE_INTERRUPTED"):
        Settings.load({}, environ={"SDREST_REQUEUE_INTERRUPTED": "perhaps"})


def test_missing_config_file_is_an_error(tmp_path) -> None:
    with pytest.raises(SettingsError, match=r"missing\.yaml"):
        Settings.load({"config": str(tmp_path / "missing.yaml")}, environ={})


@pytest.mark.parametrize("argv", [("--checkpoints-dir", "sd"), ("--checkpoints", "sd")])
def test_checkpoints_folder_flag_and_the_spec_spelling(argv: tuple[str, str]) -> None:
    settings = Settings.load(_flags("--models-dir", "/srv/models", *argv), environ={})
    assert settings.checkpoints_dir == "sd" and settings.checkpoints_path == Path("/srv/models/sd")
    assert settings.model_folders().path(ModelType.CHECKPOINT) == Path("/srv/models/sd")


@pytest.mark.parametrize("key", ["checkpoints_dir", "checkpoints-dir", "checkpoints"])
def test_checkpoints_folder_from_a_config_file(tmp_path, key: str) -> None:
    config = tmp_path / "sdrest.yaml"
    config.write_text(f"{key}: sd\n")
    assert Settings.load({"config": str(config)}, environ={}).checkpoints_dir == "sd"


def test_checkpoints_folder_from_the_environment_own_name_first() -> None:
    assert Settings.load({}, environ={"SDREST_CHECKPOINTS": "old"}).checkpoints_dir == "old"
    both = {"SDREST_CHECKPOINTS": "old", "SDREST_CHECKPOINTS_DIR": "new"}
    assert Settings.load({}, environ=both).checkpoints_dir == "new"
    assert Settings.load(_flags("--checkpoints", "flag"), environ=both).checkpoints_dir == "flag"


def test_model_must_stay_inside_the_checkpoints_folder() -> None:
    with pytest.raises(SettingsError, match="model"):
        Settings.load({"model": "../../etc/passwd"}, environ={})


def test_print_config_and_flag_errors_through_the_command(tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdrest.cli",
            "serve",
            "--print-config",
            "--port",
            "9400",
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env={"SDREST_THREADS": "5", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["port"] == 9400 and printed["threads"] == 5 and printed["output_dir"] == str(tmp_path / "out")
    bad = subprocess.run(
        [sys.executable, "-m", "sdrest.cli", "serve", "--port", "x", "--print-config"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and "port" in bad.stderr
    choice = subprocess.run(
        [sys.executable, "-m", "sdrest.cli", "serve", "--url-fetch", "sometimes"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert choice.returncode == 2 and "url-fetch" in choice.stderr


def test_alias_command_serves_by_default() -> None:
    from sdrest.cli import server_main

    assert server_main(["--print-config", "--port", "9500"]) == 0


def test_database_pool_and_wait_settings_from_every_source(tmp_path) -> None:
    defaults = Settings.load({}, environ={})
    assert (defaults.store_pool_size, defaults.auth_pool_size, defaults.store_wait_seconds) == (16, 8, 10.0)
    config = tmp_path / "sdrest.yaml"
    config.write_text("store_pool_size: 4\nauth-pool-size: 2\n")
    settings = Settings.load(
        _flags("--config", str(config), "--store-wait-seconds", "2.5"), environ={"SDREST_AUTH_POOL_SIZE": "3"}
    )
    assert (settings.store_pool_size, settings.auth_pool_size, settings.store_wait_seconds) == (4, 3, 2.5)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SDREST_STORE_POOL_SIZE", "0", "store_pool_size: must be at least 1"),
        ("SDREST_STORE_POOL_SIZE", "many", "environment variable SDREST_STORE_POOL_SIZE: 'many' is not a valid int"),
        ("SDREST_AUTH_POOL_SIZE", "-2", "auth_pool_size: must be at least 1"),
        ("SDREST_AUTH_POOL_SIZE", "1.5", "environment variable SDREST_AUTH_POOL_SIZE: '1.5' is not a valid int"),
        ("SDREST_STORE_WAIT_SECONDS", "0", "store_wait_seconds: must be a positive number of seconds"),
        ("SDREST_STORE_WAIT_SECONDS", "nan", "store_wait_seconds: must be a positive number of seconds"),
        ("SDREST_STORE_WAIT_SECONDS", "inf", "store_wait_seconds: must be a positive number of seconds"),
    ],
)
def test_bad_database_pool_and_wait_settings_are_refused_by_name(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.load({}, environ={variable: value})
    assert str(refused.value) == message
