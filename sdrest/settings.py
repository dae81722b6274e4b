"""Server settings: one object, filled from defaults, then a config file, then ``SDREST_*``
environment variables, then command-line flags (each later source wins).

Every setting is declared once, in :class:`Settings`, with its type, default and help text;
the config-file keys, environment names (``SDREST_<NAME>``) and flags (``--<name>``) are all
derived from that declaration, so they cannot drift apart. A setting's other spellings (its
flag aliases, such as the spec's ``--checkpoints`` for ``--checkpoints-dir``) are accepted in
all three places too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrest.errors import SdrestError

ENV_PREFIX = "SDREST_"

#: A web origin as browsers send it in ``Origin``: scheme, host and optional port, nothing else.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")
_WORKER_ID = re.compile(r"[A-Za-z0-9._:@-]{1,64}")
#: --host values that listen on every interface.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


#: Folder settings -> the model type (API name) whose folder they set.
_FOLDER_TYPES = {
    "checkpoints_dir": "checkpoint",
    "lora_dir": "lora",
    "vae_dir": "vae",
    "presets_dir": "presets",
    "prompts_dir": "prompts",
    "neg_prompts_dir": "neg_prompts",
    "taesd_dir": "taesd",
    "esrgan_dir": "esrgan",
    "controlnet_dir": "controlnet",
    "upscaler_dir": "upscaler",
    "embeddings_dir": "embedding",
    "diffusion_models_dir": "diffusion_model",
    "text_encoders_dir": "text_encoder",
}


class SettingsError(SdrestError, ValueError):
    """A setting has a bad value or an unknown name; the message names it and its source."""


def _setting(
    default: Any,
    help: str,
    *,
    choices: Sequence[str] | None = None,
    flag: bool = True,
    metavar: str | None = None,
    aliases: Sequence[str] = (),
    secret: bool = False,
    env: Sequence[str] = (),
) -> Any:
    # secret: never in repr() and "***" in to_dict(redact=True) (--print-config); env: other
    # environment variables read when SDREST_<NAME> is not set (the field's own, e.g. HF_TOKEN).
    return field(
        default=default,
        repr=not secret,
        metadata={
            "help": help,
            "choices": choices,
            "flag": flag,
            "metavar": metavar,
            "aliases": tuple(aliases),
            "secret": secret,
            "env": tuple(env),
        },
    )


@dataclass
class Settings:
    """Everything ``sdrest serve`` can be told. Paths are resolved by :meth:`resolved`."""

    host: str = _setting("127.0.0.1", "address to listen on (0.0.0.0: all interfaces)")
    port: int = _setting(8080, "TCP port to listen on")
    models_dir: Path = _setting(
        Path("models"), "root folder of the model library", aliases=("--model-dir",)
    )  # the spec's spelling in one example
    # The model folders, relative to --models-dir. --checkpoints is the spec's spelling (its
    # examples say "--checkpoints checkpoints"); it names the same setting.
    checkpoints_dir: str = _setting("checkpoints", "folder of checkpoints", aliases=("--checkpoints",))
    lora_dir: str = _setting("lora", "folder of LoRAs")
    vae_dir: str = _setting("vae", "folder of VAEs")
    presets_dir: str = _setting("presets", "folder of generation presets")
    prompts_dir: str = _setting("prompts", "folder of prompt templates")
    neg_prompts_dir: str = _setting("neg_prompts", "folder of negative prompt templates")
    taesd_dir: str = _setting("taesd", "folder of TAESD decoders")
    esrgan_dir: str = _setting("esrgan", "folder of ESRGAN upscalers")
    controlnet_dir: str = _setting("controlnet", "folder of ControlNets")
    upscaler_dir: str = _setting("upscaler", "folder of other upscalers")
    embeddings_dir: str = _setting("embeddings", "folder of textual-inversion embeddings")
    diffusion_models_dir: str = _setting("diffusion_models", "folder of standalone diffusion models (Flux, SD3, ...)")
    text_encoders_dir: str = _setting("text_encoders", "folder of text encoders (clip_l, clip_g, t5xxl, llm)")
    allow_symlinks: bool = _setting(False, "follow symlinks that lead outside the model folders")
    idle_unload_minutes: float = _setting(0.0, "unload the model after this many idle minutes (0: never)")
    max_loaded_models: int = _setting(
        1, "models the worker keeps loaded at once; the least recently used one is unloaded to make room"
    )
    max_model_memory_mb: float = _setting(
        0.0,
        "weight memory (RAM + VRAM, in MiB) the worker's loaded models may "
        "take together; the least recently used are unloaded to keep within "
        "it (0: no budget, only --max-loaded-models counts)",
    )
    model_overtake_limit: int = _setting(
        4,
        "how many later jobs for an already loaded model may run before a "
        "job of the same priority that needs another model (0: strict order)",
    )
    background_writes: bool = _setting(
        True,
        "write a job's images while the next job starts (its model load and "
        "sampling overlap the writing; off: the next job waits for them)",
    )
    cancel_timeout: float = _setting(
        60.0,
        "seconds a cancelled job's library call may take to return before the worker is killed instead (and restarted)",
    )
    worker: bool = _setting(
        True,
        "run generation workers in this server (--no-worker: an API node only; the workers run "
        "as `sdrest worker` against the same --store)",
    )
    workers: int = _setting(
        1,
        "generation workers this server runs, each with its own worker process and loaded models, "
        "claiming from the one queue",
    )
    gpus: str | None = _setting(
        None,
        "comma-separated GPU indices (e.g. 0,1): one worker on each (sets --workers)",
        metavar="LIST",
    )
    worker_id: str | None = _setting(
        None,
        "this generation worker's id in the job store, unique among live workers and kept "
        "across restarts (default: the host name)",
        metavar="ID",
    )
    lease_seconds: float = _setting(
        30.0,
        "a running job's lease: a worker that stops renewing it (killed, powered off, cut off) "
        "for this long loses the job to another worker",
    )
    ui_dir: Path | None = _setting(None, "folder of the web UI to serve at /ui/ (default: the bundled one)")
    config: Path | None = _setting(None, "JSON or YAML file with settings", flag=False)
    data_dir: Path = _setting(Path("data"), "folder for the job database and other state")
    store: str | None = _setting(
        None,
        "where jobs, events and workers live (and, with PostgreSQL, users and keys): "
        "sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB (default: the data folder's "
        "jobs.sqlite3; keep a password in ~/.pgpass or PGPASSWORD)",
        metavar="URL",
    )
    store_pool_size: int = _setting(
        16,
        "PostgreSQL --store: the most connections each process (API node or worker) opens for jobs, events and images",
    )
    auth_pool_size: int = _setting(
        8, "PostgreSQL --store: the most connections each API node opens for users, keys and tokens"
    )
    store_wait_seconds: float = _setting(
        10.0,
        "how long a call waits for the database (a free pooled PostgreSQL connection, or the SQLite "
        "write lock) before its request is answered 503 (a worker tries again)",
    )
    output_dir: Path | None = _setting(None, "folder for generated images (default: <data-dir>/outputs)")
    image_store: str = _setting(
        "auto",
        "where finished jobs' images live: files (in --output-dir; a cluster shares the folder), "
        "database (in the PostgreSQL --store; --output-dir only stages them) or auto (database "
        "with a postgresql:// store, else files)",
        choices=("auto", "files", "database"),
    )
    threads: int = _setting(-1, "CPU threads for generation (-1: all physical cores)")
    model: str | None = _setting(None, "checkpoint (name under the checkpoints folder) to load at start-up")
    log_level: str = _setting("info", "log level", choices=("debug", "info", "warning", "error"))
    log_file: Path | None = _setting(None, "also write the log to this file")
    log_format: str = _setting("text", "log line format", choices=("text", "json"))
    http_threads: int = _setting(8, "HTTP worker threads for ordinary requests")
    max_connections_per_client: int | None = _setting(
        None,
        "open connections one client address (an IPv6 /64) may hold; more are closed at once "
        "(--trusted-proxy addresses exempt; 0: no limit); default --http-threads + --max-event-streams, "
        "half of what the server accepts",
    )
    max_event_streams: int = _setting(
        64, "most concurrent event streams and waiting requests (each holds its own thread)"
    )
    max_body_mb: float = _setting(50.0, "largest accepted request body, in MiB")
    max_image_mb: float = _setting(20.0, "largest accepted input image, in MiB")
    max_image_pixels: int = _setting(4096 * 4096, "largest accepted input image, in pixels")
    max_job_cost: float | None = _setting(
        None,
        "most compute one job may ask for, in megapixel-steps (width x height x images or frames x steps, "
        "the hires pass and custom sigmas counted; 0: no limit); default 100 on CPU builds, 2000 on GPU builds",
    )
    url_fetch: str = _setting("public", "fetching input images from http(s) URLs", choices=("off", "public", "any"))
    url_timeout: float = _setting(10.0, "seconds allowed for fetching one input image")
    preview: str = _setting("proj", "live preview images during sampling", choices=("none", "proj", "tae", "vae"))
    preview_interval: int = _setting(1, "send a preview every N sampling steps")
    output_format: str = _setting("png", "default image format", choices=("png", "jpeg", "webp"))
    job_retention_hours: float = _setting(24.0 * 7, "keep finished jobs and their images this long (0: forever)")
    requeue_interrupted: bool = _setting(True, "re-queue a job interrupted by a server crash (kill -9, power loss)")
    max_interruptions: int = _setting(3, "server crashes one job may live through before it fails")
    max_queue: int = _setting(1000, "most queued jobs; more are refused with 503")
    max_queued_per_user: int = _setting(100, "most queued jobs of one user; more are refused with 429")
    max_streams_per_user: int = _setting(
        8,
        "most concurrent event streams and waiting requests of one user (or address); at most "
        "--max-event-streams - 1, so one is always left for the others",
    )
    user_models: str | None = _setting(
        None,
        "checkpoints non-admins may switch to, comma-separated ('*': any, "
        "with per-request model options); default: only the current one",
    )
    wait_timeout: float = _setting(600.0, "longest a 'wait' request blocks before answering 202")
    keep_on_disconnect: bool = _setting(
        False, "A1111/OpenAI calls: keep the job when its client disconnects (default: cancel it)"
    )
    auth: str = _setting("none", "authentication method", choices=("none", "jwt", "api-key", "unix", "pam", "optional"))
    enable_unix_auth: bool = _setting(False, "deprecated: use --auth unix")
    enable_pam_auth: bool = _setting(False, "deprecated: use --auth pam")
    auth_group: str | None = _setting(None, "unix/pam: only members of this group may log in")
    admin_group: str | None = _setting(None, "unix/pam: members of this group are admins")
    pam_service: str = _setting("sdrest", "PAM service used by --auth pam")
    jwt_secret: str | None = _setting(
        None,
        "token signing secret (default: generated once, kept 0600 in the data folder, or in a PostgreSQL --store)",
        flag=False,
        secret=True,
    )
    access_token_seconds: int = _setting(900, "lifetime of an access token")
    refresh_token_days: float = _setting(7.0, "lifetime of a refresh token")
    guest_can_generate: bool = _setting(False, "--auth optional: guests may submit jobs (else read-only)")
    public_images: bool = _setting(False, "image URLs need no credentials (they are unguessable)")
    trusted_proxy: str | None = _setting(None, "comma-separated proxy addresses whose X-Forwarded-For is believed")
    allowed_hosts: str | None = _setting(
        None, "comma-separated host names the server answers to besides localhost and --host ('*': any)"
    )
    auth_max_failures: int = _setting(5, "failed logins per user or client before a lockout")
    auth_lockout_seconds: float = _setting(300.0, "how long a lockout lasts")
    secure_cookies: bool = _setting(False, "mark session cookies Secure (behind HTTPS)")
    cors_origins: str | None = _setting(
        None,
        "origins whose web pages may call the API: a comma-separated list "
        "(e.g. https://app.example.com; credentials allowed) or * (any origin, "
        "without credentials); default: none",
    )
    recipes: Path | None = _setting(
        None,
        "an extra recipe catalogue (YAML, in the format of the shipped sdrest/models/recipes.yaml) "
        "whose recipes are offered beside the shipped ones",
        metavar="FILE",
    )
    # Models from the hubs (sdrest.models.hub). Tokens go only to their own endpoint.
    hf_token: str | None = _setting(
        None,
        "Hugging Face access token, for gated and private repositories (also HF_TOKEN)",
        secret=True,
        env=("HF_TOKEN",),
    )
    hf_endpoint: str = _setting(
        "https://huggingface.co", "Hugging Face endpoint, or a mirror of it (also HF_ENDPOINT)", env=("HF_ENDPOINT",)
    )
    civitai_token: str | None = _setting(None, "Civitai API token, for models that need sign-in", secret=True)
    civitai_endpoint: str = _setting("https://civitai.com", "Civitai endpoint")
    download_hosts: str = _setting(
        "public",
        "model downloads from plain URLs: public hosts only (https), any host, or off (hub endpoints are trusted)",
        choices=("off", "public", "any"),
    )
    max_download_gb: float = _setting(64.0, "largest model file a download may fetch, in GB (0: no limit)")
    download_concurrency: int = _setting(2, "model downloads run at once (beside generation, never in its worker)")

    # --- derived ---

    @property
    def checkpoints_path(self) -> Path:
        """The checkpoints folder (``--checkpoints-dir`` under ``--models-dir``)."""
        return self.models_dir / self.checkpoints_dir

    def model_folders(self) -> Any:
        """Each model type's folder (:class:`sdrest.models.types.ModelFolders`)."""
        from sdrest.models.types import ModelFolders, ModelType

        overrides: dict[ModelType | str, Path | str] = {}
        for f in dataclasses.fields(self):
            if f.name.endswith("_dir") and f.name not in ("data_dir", "output_dir", "models_dir", "ui_dir"):
                overrides[_FOLDER_TYPES[f.name]] = getattr(self, f.name)
        return ModelFolders.build(self.models_dir, overrides)

    @property
    def cors_origin_list(self) -> list[str]:
        """``--cors-origins`` as a list (empty: no cross-origin access)."""
        return [o.strip().rstrip("/") for o in (self.cors_origins or "").split(",") if o.strip()]

    @property
    def outputs_dir(self) -> Path:
        return self.output_dir if self.output_dir is not None else self.data_dir / "outputs"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def model_memory_budget(self) -> int:
        """``--max-model-memory-mb`` in bytes (0: no budget)."""
        return int(self.max_model_memory_mb * 1024 * 1024)

    @property
    def worker_devices(self) -> list[str | None]:
        """One entry per worker: its GPU index (``--gpus``), or None (the default device)."""
        if self.gpus is not None:
            return [d.strip() for d in self.gpus.split(",")]
        return [None] * self.workers

    @property
    def worker_name(self) -> str:
        """This worker's id in the job store: ``--worker-id``, or the host name."""
        if self.worker_id is not None:
            return self.worker_id
        import socket

        return socket.gethostname()[:64] or "localhost"

    @property
    def store_url(self) -> str:
        """The job store's URL: ``--store``, or the data folder's SQLite file."""
        from sdrest.jobs.store import SQLITE_SCHEME

        return self.store if self.store is not None else f"{SQLITE_SCHEME}{self.database_path}"

    def resolved(self) -> Settings:
        """A copy with every path made absolute (so a worker process sees the same files)."""
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                changes[f.name] = value.expanduser().resolve()
        from sdrest.jobs.store import SQLITE_SCHEME, sqlite_path

        if self.store is not None and (path := sqlite_path(self.store)) is not None:
            changes["store"] = f"{SQLITE_SCHEME}{path.expanduser().resolve()}"
        return dataclasses.replace(self, **changes)

    def to_dict(self, redact: bool = False) -> dict[str, Any]:
        values = {
            f.name: (str(v) if isinstance(v := getattr(self, f.name), Path) else v) for f in dataclasses.fields(self)
        }
        for f in dataclasses.fields(self):
            if redact and f.metadata.get("secret") and values.get(f.name):
                values[f.name] = "***"
        if redact and values.get("store"):
            from sdrest.jobs.store import redact_url

            values["store"] = redact_url(values["store"])
        return values

    # --- loading ---

    @classmethod
    def load(cls, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """defaults -> config file -> environment -> flags (only flags actually given)."""
        flags = dict(flags or {})
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_path = flags.get("config") or env.get(f"{ENV_PREFIX}CONFIG")
        if config_path:
            values.update(_read_config_file(Path(config_path)))
            values["config"] = config_path
        for f in dataclasses.fields(cls):
            if f.name == "config":
                continue
            # The setting's own name first: it wins over an alias set beside it.
            names = [f"{ENV_PREFIX}{key.upper()}" for key in (f.name, *_aliases(f))] + list(f.metadata.get("env", ()))
            for name in names:
                if name in env:
                    values[f.name] = _convert(f, env[name], f"environment variable {name}")
                    break
        for key, value in flags.items():
            values[key] = value
        settings = cls.from_mapping(values)
        return settings.with_deprecations()

    def with_deprecations(self) -> Settings:
        """Map --enable-unix-auth / --enable-pam-auth to --auth, with a warning."""
        import sys

        for old, method in (("enable_unix_auth", "unix"), ("enable_pam_auth", "pam")):
            if getattr(self, old):
                print(f"sdrest: --{old.replace('_', '-')} is deprecated; use --auth {method}", file=sys.stderr)
                if self.auth == "none":
                    self = dataclasses.replace(self, auth=method)
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "settings") -> Settings:
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            name = _ALIASES.get(name, name)
            if name not in known:
                raise SettingsError(f"unknown setting {key!r} in {source}")
            kwargs[name] = _convert(known[name], value, f"setting {key!r}")
        settings = cls(**kwargs)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port: must be 1..65535, got {self.port}")
        for name in (
            "http_threads",
            "max_event_streams",
            "preview_interval",
            "max_queue",
            "max_image_pixels",
            "max_queued_per_user",
            "max_streams_per_user",
            "max_loaded_models",
            "workers",
            "store_pool_size",
            "auth_pool_size",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: must be at least 1")
        for name in ("max_body_mb", "max_image_mb", "url_timeout", "wait_timeout", "cancel_timeout"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name}: must be positive")
        if self.gpus is not None:
            devices = [d.strip() for d in self.gpus.split(",")]
            if not all(d.isdigit() for d in devices) or len(set(devices)) != len(devices):
                raise SettingsError("gpus: a comma-separated list of distinct GPU indices, e.g. 0,1")
            if self.workers not in (1, len(devices)):
                raise SettingsError(f"workers: --gpus runs one worker per GPU ({len(devices)}), not {self.workers}")
        if not 0 < self.store_wait_seconds < float("inf"):  # NaN fails this too
            raise SettingsError("store_wait_seconds: must be a positive number of seconds")
        if not 1 <= self.lease_seconds < float("inf"):
            raise SettingsError("lease_seconds: must be at least 1")
        if self.worker_id is not None and not _WORKER_ID.fullmatch(self.worker_id):
            raise SettingsError(
                "worker_id: 1-64 characters: letters, digits and . _ - : @ (it names the worker in /status and logs)"
            )
        if self.max_interruptions < 0:
            raise SettingsError("max_interruptions: must be >= 0")
        for name in ("hf_endpoint", "civitai_endpoint"):
            if not re.fullmatch(r"https?://[^/\s?#@]+(/[^\s?#]*)?", getattr(self, name)):
                raise SettingsError(f"{name}: must be an http(s):// URL, e.g. https://huggingface.co")
        if not 0 <= self.max_download_gb < float("inf"):
            raise SettingsError("max_download_gb: must be a number of GB >= 0 (0: no limit)")
        if self.download_concurrency < 1:
            raise SettingsError("download_concurrency: must be at least 1")
        if self.model_overtake_limit < 0:
            raise SettingsError("model_overtake_limit: must be >= 0")
        if self.max_connections_per_client is not None and self.max_connections_per_client < 0:
            raise SettingsError("max_connections_per_client: must be >= 0 (0: no limit)")
        if self.max_job_cost is not None and not 0 <= self.max_job_cost < float("inf"):
            raise SettingsError("max_job_cost: must be a number of megapixel-steps >= 0 (0: no limit)")
        if not 0 <= self.max_model_memory_mb < float("inf"):  # NaN fails this too
            raise SettingsError("max_model_memory_mb: must be a number of MiB >= 0 (0: no budget)")
        if self.job_retention_hours < 0 or self.idle_unload_minutes < 0:
            raise SettingsError("job_retention_hours and idle_unload_minutes: must be >= 0")
        if self.threads == 0:
            raise SettingsError("threads: must be -1 (all physical cores) or a positive number")
        if self.model is not None and (Path(self.model).is_absolute() or ".." in Path(self.model).parts):
            raise SettingsError("model: must be a name inside the checkpoints folder")
        if self.store is not None:
            _check_store(self.store)
        from sdrest.jobs.store import is_postgres_url

        if self.image_store == "database" and not is_postgres_url(self.store or ""):
            raise SettingsError("image_store: database needs a postgresql:// --store (images live in its database)")
        if self.auth == "none" and self.host.strip() in WILDCARD_HOSTS and not (self.allowed_hosts or "").strip():
            # Every Host would be served: a DNS-rebinding page on any site the user visits would be admin.
            raise SettingsError(
                f"allowed_hosts: --auth none on --host {self.host!r} needs --allowed-hosts, the names and "
                "addresses clients use to reach this server (e.g. sd.lan,192.168.1.20; '*' accepts any, which "
                "lets any web page its users visit act as admin through DNS rebinding), or an --auth method"
            )
        origins = self.cors_origin_list
        if "*" in origins and len(origins) > 1:
            raise SettingsError("cors_origins: '*' cannot be combined with other origins")
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise SettingsError(f"cors_origins: {origin!r} is not an origin (scheme://host[:port], no path)")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise SettingsError(f"{f.name}: must be one of {', '.join(choices)}")

    # --- command line ---

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One ``--flag`` per setting; unset flags stay absent so lower sources show through."""
        parser.add_argument(
            "--config",
            metavar="FILE",
            default=argparse.SUPPRESS,
            help="JSON or YAML file with settings (also SDREST_CONFIG)",
        )
        for f in dataclasses.fields(cls):
            if not f.metadata.get("flag", True):
                continue
            options = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]
            base = _base_type(f)
            help_text = f"{f.metadata['help']} (default: {f.default}; env {ENV_PREFIX}{f.name.upper()})"
            if base is bool:
                parser.add_argument(
                    *options,
                    dest=f.name,
                    action=argparse.BooleanOptionalAction,
                    default=argparse.SUPPRESS,
                    help=help_text,
                )
            else:
                parser.add_argument(
                    *options,
                    dest=f.name,
                    type=str,
                    default=argparse.SUPPRESS,
                    choices=f.metadata.get("choices"),
                    metavar=f.metadata.get("metavar") or f.name.upper(),
                    help=help_text,
                )


def _check_store(url: str) -> None:
    """``--store`` names a backend this install can open (without connecting to it)."""
    import importlib.util

    from sdrest.jobs.store import is_postgres_url, redact_url, sqlite_path

    if sqlite_path(url) is not None:
        if url.endswith("/"):  # no file name (sqlite:/// alone, or a folder)
            raise SettingsError(
                "store: sqlite:/// needs a file path (sqlite:///relative/jobs.db, sqlite:////absolute/jobs.db)"
            )
        return
    if not is_postgres_url(url):
        raise SettingsError(f"store: {redact_url(url)!r} is not sqlite:///PATH or postgresql://USER@HOST/DB")
    if importlib.util.find_spec("psycopg") is None or importlib.util.find_spec("psycopg_pool") is None:
        raise SettingsError("store: a postgresql:// store needs the postgres extra (pip install 'sdrest[postgres]')")
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except ProgrammingError as exc:
        # libpq's reason quotes the URL: it is left out when the URL may hold a password.
        reason = "" if redact_url(url) != url or "@" in url else f" ({str(exc).strip()})"
        raise SettingsError(f"store: {redact_url(url)!r} is not a valid PostgreSQL URL{reason}") from None


def _base_type(f: dataclasses.Field[Any]) -> type:
    hint = typing.get_type_hints(Settings)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return args[0]
    return hint


def _convert(f: dataclasses.Field[Any], value: Any, source: str) -> Any:
    base = _base_type(f)
    if value is None or (isinstance(value, str) and value == "" and base is not str):
        return None
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if base is int and isinstance(value, float):
            raise ValueError(value)
        if base in (int, float) and isinstance(value, bool):
            raise ValueError(value)
        return base(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{source}: {value!r} is not a valid {base.__name__}") from None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror or exc}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise SettingsError(f"config file {path}: cannot parse: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path}: must contain a mapping of settings")
    known = {f.name for f in dataclasses.fields(Settings)} | _ALIASES.keys()
    for key in data:
        if str(key).replace("-", "_") not in known or key == "config":
            raise SettingsError(f"config file {path}: unknown setting {key!r}")
    names = {str(k).replace("-", "_"): v for k, v in data.items()}
    return {_ALIASES.get(name, name): v for name, v in names.items()}


def _aliases(f: dataclasses.Field[Any]) -> list[str]:
    """A setting's other names, from its flag aliases (``--model-dir`` -> ``model_dir``)."""
    return [alias.lstrip("-").replace("-", "_") for alias in f.metadata.get("aliases", ())]


#: Every alias -> the setting it names.
_ALIASES = {alias: f.name for f in dataclasses.fields(Settings) for alias in _aliases(f)}
