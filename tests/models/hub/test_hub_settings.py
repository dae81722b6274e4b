"""The hub settings: every source of them (HF_TOKEN / HF_ENDPOINT as huggingface_hub reads them),
tokens kept out of --print-config and repr(), bad values refused by name, and HubConfig from them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sdrest.models.hub.config import GB, HubConfig
from sdrest.settings import Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.load(environ={})
    assert settings.hf_endpoint == "https://huggingface.co"
    assert settings.civitai_endpoint == "https://civitai.com"
    assert (settings.hf_token, settings.civitai_token) == (None, None)
    assert settings.download_hosts == "public"
    assert settings.download_concurrency == 2


def test_hf_token_and_endpoint_from_the_hubs_own_variables_and_ours_first() -> None:
    env = {"HF_TOKEN": "hf_a", "HF_ENDPOINT": "http://mirror.lan:8080"}
    settings = Settings.load(environ=env)
    assert (settings.hf_token, settings.hf_endpoint) == ("hf_a", "http://mirror.lan:8080")
    settings = Settings.load(environ={**env, "SDREST_HF_TOKEN": "hf_b"})
    assert settings.hf_token == "hf_b"
    settings = Settings.load({"hf_token": "hf_c"}, environ={**env, "SDREST_HF_TOKEN": "hf_b"})
    assert settings.hf_token == "hf_c"


def test_tokens_are_redacted_in_print_config_and_repr() -> None:
    env = {"PATH": "/usr/bin:/bin", "HF_TOKEN": "hf_secret_1", "SDREST_CIVITAI_TOKEN": "civ_secret_2"}
    printed = subprocess.run(
        [sys.executable, "-m", "sdrest.cli", "serve", "--print-config", "--civitai-endpoint", "https://c.example"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    values = json.loads(printed)
    assert (values["hf_token"], values["civitai_token"]) == ("***", "***")
    assert values["civitai_endpoint"] == "https://c.example"
    assert "secret_" not in printed
    settings = Settings.load(environ=env)
    assert "secret_" not in repr(settings)
    assert "secret_" not in repr(HubConfig.from_settings(settings))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"hf_endpoint": "ftp://x"}, "hf_endpoint: must be an http(s):// URL"),
        ({"civitai_endpoint": "https://user@c.example"}, "civitai_endpoint: must be an http(s):// URL"),
        ({"max_download_gb": -1}, "max_download_gb: must be"),
        ({"download_concurrency": 0}, "download_concurrency: must be at least 1"),
        ({"download_hosts": "some"}, "download_hosts"),
    ],
)
def test_bad_values_are_refused_by_name(values: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.load(values, environ={})


def test_hub_config_from_settings() -> None:
    settings = Settings.load(
        {"max_download_gb": 1.5, "civitai_token": "c", "download_hosts": "any"},
        environ={"HF_ENDPOINT": "http://127.0.0.1:9/"},
    )
    config = HubConfig.from_settings(settings)
    assert config.hf_endpoint == "http://127.0.0.1:9"
    assert config.max_download_bytes == int(1.5 * GB)
    assert (config.civitai_token, config.hf_token, config.download_hosts) == ("c", None, "any")
    assert HubConfig.from_settings(Settings.load({"max_download_gb": 0}, environ={})).max_download_bytes is None
