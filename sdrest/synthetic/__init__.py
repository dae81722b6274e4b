"""Synthetic (random-weight) models with the real tensor layouts.

Why: the test-suite must drive the *real* native loader, sampler, VAE, LoRA
and upscaler code, but no real weights can be downloaded in CI or on this
machine. These generators write files whose tensor names/shapes are exactly
what stable-diffusion.cpp expects, filled with seeded random numbers, so the
library loads and runs them and produces non-trivial (if meaningless) images.

``ensure_synthetic_models()`` writes them once per generator version into a
cache directory and returns their paths; later calls are a few ``stat``s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .esrgan import write_esrgan
from .lora import write_lora
from .sd1 import write_sd1_checkpoint, write_sd1_vae
from .taesd import write_taesd
from .wan import write_taehv, write_wan

__all__ = [
    "GENERATOR_VERSION",
    "SyntheticModels",
    "default_cache_dir",
    "ensure_synthetic_models",
    "generator_stamp",
    "write_esrgan",
    "write_lora",
    "write_sd1_checkpoint",
    "write_sd1_vae",
    "write_taehv",
    "write_taesd",
    "write_wan",
]

#: Bump when the meaning of the generated files changes without a code change
#: in this package (the stamp also hashes this package's sources).
GENERATOR_VERSION = 1

_STAMP_RE = re.compile(r"^g\d+-[0-9a-f]{12}$")
_MANIFEST = "manifest.json"

#: Name of the LoRA as used in prompts: ``<lora:synthetic_lora:1>``.
LORA_NAME = "synthetic_lora"


@dataclass(frozen=True)
class SyntheticModels:
    """Paths of the generated files (each model type in its own folder, like a
    typical models/ tree, so a directory scan sees exactly one file per type)."""

    root: Path
    checkpoint: Path  # SD1 tiny UNet + CLIP-L + small VAE (~0.97 GB)
    vae: Path  # standalone SD1 VAE (same layout, no prefix) for --vae
    lora: Path  # kohya LoRA for the checkpoint, alone in its folder
    taesd: Path  # SD1 TAESD (encoder + decoder) for --taesd
    esrgan: Path  # 4x RRDBNet, 1 block, for the upscaler
    checkpoint_no_vae: Path | None = None  # only if requested (~0.89 GB more)
    wan: Path | None = None  # only if requested: Wan2.1 T2V 1.3B, Q2_K GGUF (~0.47 GB)
    wan_taehv: Path | None = None  # with wan: its tiny video autoencoder, for --taesd

    @property
    def lora_dir(self) -> Path:
        """Directory to pass as the LoRA model dir."""
        return self.lora.parent

    @property
    def lora_name(self) -> str:
        """Name to use in prompts, e.g. ``f"<lora:{m.lora_name}:1>"``."""
        return self.lora.name.removesuffix(".safetensors")


# relative path, writer
_GENERATORS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "checkpoint": ("checkpoints/sd1_tiny_synthetic.safetensors", lambda p: write_sd1_checkpoint(p, seed=0)),
    "vae": ("vae/sd1_vae_synthetic.safetensors", lambda p: write_sd1_vae(p, seed=4)),
    "lora": (f"loras/{LORA_NAME}.safetensors", lambda p: write_lora(p, seed=1, rank=4)),
    "taesd": ("taesd/taesd_synthetic.safetensors", lambda p: write_taesd(p, seed=2)),
    "esrgan": ("upscalers/esrgan_x4_synthetic.safetensors", lambda p: write_esrgan(p, seed=3)),
    "checkpoint_no_vae": (
        "checkpoints_no_vae/sd1_tiny_synthetic_no_vae.safetensors",
        lambda p: write_sd1_checkpoint(p, seed=0, include_vae=False),
    ),
    "wan": ("diffusion_models/wan2.1_t2v_1.3b_synthetic.gguf", lambda p: write_wan(p, seed=5)),
    "wan_taehv": ("taesd/taehv_wan2.1_synthetic.safetensors", lambda p: write_taehv(p, seed=6)),
}


def default_cache_dir() -> Path:
    """``$SDREST_CACHE_DIR/synthetic`` if set, else ``~/.cache/sdrest/synthetic``."""
    env = os.environ.get("SDREST_CACHE_DIR")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "sdrest"
    return base / "synthetic"


def _source_digest() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for f in sorted(here.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def generator_stamp() -> str:
    """Identifies the generator: version + hash of this package's sources.

    Any change to a generator yields a new stamp, hence a new cache folder.
    """
    return f"g{GENERATOR_VERSION}-{_source_digest()}"


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Inter-process lock so parallel test workers generate each file once."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX: no locking
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read_manifest(root: Path) -> dict:
    try:
        return json.loads((root / _MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _is_complete(root: Path, manifest: dict, key: str) -> bool:
    entry = manifest.get("files", {}).get(key)
    if not entry:
        return False
    path = root / _GENERATORS[key][0]
    try:
        return path.stat().st_size == entry["bytes"]
    except OSError:
        return False


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _prune_stale(cache_dir: Path, keep: str, min_age_s: float = 3600.0) -> None:
    """Delete other generators' folders (~1 GB each), except recently touched
    ones, which another checkout/process may be generating or using."""
    now = time.time()
    for old in cache_dir.iterdir():
        if old.name == keep or not old.is_dir() or not _STAMP_RE.match(old.name):
            continue
        try:
            if now - old.stat().st_mtime < min_age_s:
                continue
        except OSError:
            continue
        shutil.rmtree(old, ignore_errors=True)


def ensure_synthetic_models(
    cache_dir: Path | str | None = None, *, with_no_vae_checkpoint: bool = False, with_video: bool = False
) -> SyntheticModels:
    """Return the synthetic models, generating missing ones under ``cache_dir``.

    Files live in ``cache_dir/<generator stamp>/``; each is written to a temp
    name and renamed into place, and recorded (with its size) in
    ``manifest.json``, so an interrupted run never leaves a truncated file
    that looks valid. A file lock serialises concurrent callers. Folders of
    other stamps untouched for an hour are deleted after generating.
    First call: ~6 s and ~1.05 GB on disk (2 CPU cores); later calls: a few
    ``stat``s. ``with_no_vae_checkpoint`` adds a VAE-less copy (+0.89 GB,
    +5 s) for testing the "needs --taesd/--vae" path. ``with_video`` adds the Wan video model and
    its TAEHV (+0.49 GB, ~3 s).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stamp = generator_stamp()
    root = cache_dir / stamp
    keys = ["checkpoint", "vae", "lora", "taesd", "esrgan"]
    if with_no_vae_checkpoint:
        keys.append("checkpoint_no_vae")
    if with_video:
        keys += ["wan", "wan_taehv"]

    if not all(_is_complete(root, _read_manifest(root), k) for k in keys):
        with _locked(cache_dir / ".lock"):
            manifest = _read_manifest(root)  # re-read: another process may have finished
            # Temp files left by a killed writer (all writers hold the lock,
            # so none of these is in progress).
            if root.is_dir():
                for stale in root.glob("*/.*.tmp-*"):
                    with contextlib.suppress(OSError):
                        stale.unlink()
            manifest.setdefault("stamp", stamp)
            files = manifest.setdefault("files", {})
            for key in keys:
                if _is_complete(root, manifest, key):
                    continue
                rel, writer = _GENERATORS[key]
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
                t0 = time.perf_counter()
                try:
                    writer(tmp)
                    os.replace(tmp, path)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
                files[key] = {
                    "path": rel,
                    "bytes": path.stat().st_size,
                    "seconds": round(time.perf_counter() - t0, 2),
                }
                _atomic_write_text(root / _MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            _prune_stale(cache_dir, keep=stamp)

    paths = {k: root / _GENERATORS[k][0] for k in keys}
    return SyntheticModels(
        root=root,
        checkpoint=paths["checkpoint"],
        vae=paths["vae"],
        lora=paths["lora"],
        taesd=paths["taesd"],
        esrgan=paths["esrgan"],
        checkpoint_no_vae=paths.get("checkpoint_no_vae"),
        wan=paths.get("wan"),
        wan_taehv=paths.get("wan_taehv"),
    )
