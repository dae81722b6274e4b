"""What the hub code needs to know from the settings, as one frozen value (threads share it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["HubConfig"]

GB = 1_000_000_000


@dataclass(frozen=True)
class HubConfig:
    """Endpoints, tokens and limits of downloads. ``download_hosts``: "public" (plain URLs only to
    public hosts over https), "any" or "off" (no plain URLs); the hub endpoints are trusted as set.
    ``max_download_bytes``: None for no limit. ``retries``: further tries after a dropped
    connection, waiting ``backoff_seconds`` doubled each time (at most ``max_backoff_seconds``)."""

    hf_endpoint: str = "https://huggingface.co"
    hf_token: str | None = field(default=None, repr=False)
    civitai_endpoint: str = "https://civitai.com"
    civitai_token: str | None = field(default=None, repr=False)
    download_hosts: str = "public"
    max_download_bytes: int | None = 64 * GB
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    retries: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.download_hosts not in ("off", "public", "any"):
            raise ValueError(f"download_hosts must be off, public or any, not {self.download_hosts!r}")
        object.__setattr__(self, "hf_endpoint", self.hf_endpoint.rstrip("/"))
        object.__setattr__(self, "civitai_endpoint", self.civitai_endpoint.rstrip("/"))

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> HubConfig:
        """The config of :class:`sdrest.settings.Settings` (``overrides``: fields to set besides)."""
        cap = settings.max_download_gb
        values: dict[str, Any] = {
            "hf_endpoint": settings.hf_endpoint,
            "hf_token": settings.hf_token or None,
            "civitai_endpoint": settings.civitai_endpoint,
            "civitai_token": settings.civitai_token or None,
            "download_hosts": settings.download_hosts,
            "max_download_bytes": int(cap * GB) if cap else None,
        }
        values.update(overrides)
        return cls(**values)
