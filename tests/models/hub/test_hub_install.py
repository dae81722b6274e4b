"""Downloads end to end against the hub stand-in (tests/hubs.py) with the real huggingface_hub
and httpx2 clients: what lands where, resume, verification, refusals, and where tokens go."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

import pytest
from hubs import CivitaiFile, Faults, Hubs, hubs

from sdrest.models.hub import HubConfig, HubError, install, partial_path
from sdrest.models.types import ModelFolders, ModelType
from sdrest.synthetic.headers import kohya_lora, sd1_checkpoint, write_sparse_safetensors

__all__ = ["hubs"]

HF_TOKEN = "hf_stand_in_token"
CIVITAI_TOKEN = "civitai_stand_in_token"


def _model_bytes(tmp: Path, tensors: dict, pad: int, seed: int) -> bytes:
    """A small real safetensors file (the tensor names decide its kind) with ``pad`` bytes of data."""
    tensors = {**tensors, "zz_pad": ((pad // 2,), "F16")}
    path = write_sparse_safetensors(tmp / f"m{seed}.safetensors", tensors)
    raw = bytearray(path.read_bytes())
    body = hashlib.shake_256(str(seed).encode()).digest(pad // 2 * 2)
    raw[len(raw) - len(body) :] = body
    return bytes(raw)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("hubfiles")
    checkpoint = dict.fromkeys(sd1_checkpoint(), (2,))
    lora = {
        n: ((2, 2) if isinstance(s, tuple) and s and isinstance(s[0], int) else s)
        for n, s in kohya_lora({"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (8, 8)}).items()
    }
    return {"checkpoint": _model_bytes(tmp, checkpoint, 400_000, 1), "lora": _model_bytes(tmp, lora, 200_000, 2)}


def _config(hubs: Hubs, **changes: object) -> HubConfig:
    values: dict[str, object] = {
        "hf_endpoint": hubs.hf_endpoint,
        "civitai_endpoint": hubs.civitai_endpoint,
        "download_hosts": "any",
        "retries": 2,
        "backoff_seconds": 0.01,
    }
    values.update(changes)
    return HubConfig(**values)  # type: ignore[arg-type]


def _folders(tmp_path: Path) -> ModelFolders:
    return ModelFolders.build(tmp_path / "models")


def _leftovers(folders: ModelFolders) -> list[str]:
    root = folders.models_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _fails(code: str, *args: object, **kwargs: object) -> HubError:
    with pytest.raises(HubError) as raised:
        install(*args, **kwargs)  # type: ignore[arg-type]
    assert raised.value.code == code, raised.value.message
    return raised.value


def test_hf_file_lands_in_its_folder_verified_and_the_token_stays_on_the_hub(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    hubs.add_hf_file("owner/gated", "unet/model.safetensors", files["checkpoint"], gated=True)
    folders = _folders(tmp_path)
    seen: list[tuple[int, int | None]] = []
    done = install(
        "hf:owner/gated/unet/model.safetensors",
        folders,
        config=_config(hubs, hf_token=HF_TOKEN),
        model_type=ModelType.CHECKPOINT,
        on_progress=lambda d, t, _s: seen.append((d, t)),
    )
    assert done.path == (folders.path(ModelType.CHECKPOINT) / "model.safetensors").resolve()
    assert done.path.read_bytes() == files["checkpoint"]
    assert done.sha256 == hashlib.sha256(files["checkpoint"]).hexdigest()
    assert (done.skipped_existing, done.pickle, done.model_type) == (False, False, ModelType.CHECKPOINT)
    assert seen[-1] == (len(files["checkpoint"]), len(files["checkpoint"]))
    assert _leftovers(folders) == ["checkpoints/model.safetensors"]
    hub_requests = hubs.requests_to("hf")
    assert hub_requests and all(r.authorization == f"Bearer {HF_TOKEN}" for r in hub_requests)
    cdn = hubs.requests_to("cdn")
    assert cdn and all(r.authorization is None and r.host.startswith("localhost:") for r in cdn)


def test_no_type_given_the_header_decides_the_folder(hubs: Hubs, files: dict[str, bytes], tmp_path: Path) -> None:
    hubs.add_hf_file("owner/repo", "my-lora.safetensors", files["lora"])
    folders = _folders(tmp_path)
    done = install("hf:owner/repo/my-lora.safetensors", folders, config=_config(hubs))
    assert done.model_type == ModelType.LORA
    assert _leftovers(folders) == ["lora/my-lora.safetensors"]


def test_a_partial_file_left_by_a_killed_process_resumes_with_a_range_request(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    data = files["checkpoint"]
    hubs.add_hf_file("owner/repo", "m.safetensors", data)
    folders = _folders(tmp_path)
    target = folders.path(ModelType.CHECKPOINT).resolve() / "m.safetensors"
    target.parent.mkdir(parents=True)
    partial_path(target).write_bytes(data[:150_000])  # what a kill -9 mid-download leaves
    done = install("hf:owner/repo/m.safetensors", folders, config=_config(hubs), model_type=ModelType.CHECKPOINT)
    assert done.path.read_bytes() == data
    assert done.sha256 == hashlib.sha256(data).hexdigest()
    assert [r.range for r in hubs.requests_to("cdn", "GET")] == ["bytes=150000-"]
    assert _leftovers(folders) == ["checkpoints/m.safetensors"]


def test_a_partial_file_of_other_bytes_fails_the_hash_and_is_removed(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    data = files["checkpoint"]
    hubs.add_hf_file("owner/repo", "m.safetensors", data)
    folders = _folders(tmp_path)
    target = folders.path(ModelType.CHECKPOINT).resolve() / "m.safetensors"
    target.parent.mkdir(parents=True)
    partial_path(target).write_bytes(b"x" * 1000)
    _fails(
        "hash_mismatch", "hf:owner/repo/m.safetensors", folders, config=_config(hubs), model_type=ModelType.CHECKPOINT
    )
    assert _leftovers(folders) == []


def test_a_dropped_connection_is_retried_from_where_it_stopped(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    data = files["checkpoint"]
    hubs.add_hf_file("owner/repo", "m.safetensors", data, faults=Faults(drop_after=100_000, drop_times=2))
    done = install("hf:owner/repo/m.safetensors", _folders(tmp_path), config=_config(hubs))
    assert done.path.read_bytes() == data
    assert [r.range for r in hubs.requests_to("cdn", "GET")] == [None, "bytes=100000-", "bytes=200000-"]


def test_a_hub_that_goes_away_is_retried_with_backoff_then_failed(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    hubs.add_hf_file("owner/repo", "m.safetensors", files["checkpoint"], faults=Faults(drop_after=0, drop_times=99))
    error = _fails("unreachable", "hf:owner/repo/m.safetensors", _folders(tmp_path), config=_config(hubs, retries=2))
    assert "kept failing" in error.message
    assert len(hubs.requests_to("cdn", "GET")) == 3  # the first try and two retries


def test_a_sha256_mismatch_removes_the_file_and_names_both_hashes(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    stored = hubs.add_hf_file("owner/repo", "m.safetensors", files["checkpoint"], faults=Faults(wrong_sha256=True))
    folders = _folders(tmp_path)
    error = _fails("hash_mismatch", "hf:owner/repo/m.safetensors", folders, config=_config(hubs))
    assert stored.sha256 in error.message and stored.real_sha256 in error.message
    assert _leftovers(folders) == []


def test_the_users_sha256_is_checked_too(hubs: Hubs, files: dict[str, bytes], tmp_path: Path) -> None:
    hubs.add_hf_file("owner/repo", "m.safetensors", files["checkpoint"])
    folders = _folders(tmp_path)
    error = _fails("hash_mismatch", "hf:owner/repo/m.safetensors", folders, config=_config(hubs), sha256="ab" * 32)
    assert "ab" * 32 in error.message
    assert _leftovers(folders) == []


def test_an_html_page_is_refused(hubs: Hubs, files: dict[str, bytes], tmp_path: Path) -> None:
    url = hubs.add_url_file("m.safetensors", files["lora"], faults=Faults(html=True))
    folders = _folders(tmp_path)
    error = _fails("not_a_model", url, folders, config=_config(hubs), model_type=ModelType.LORA)
    assert "HTML page" in error.message
    assert _leftovers(folders) == []


def test_a_file_over_the_cap_is_refused_before_the_first_byte(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    hubs.add_hf_file("owner/repo", "m.safetensors", files["checkpoint"])
    error = _fails(
        "too_large", "hf:owner/repo/m.safetensors", _folders(tmp_path), config=_config(hubs, max_download_bytes=1000)
    )
    assert "--max-download-gb" in error.message
    assert hubs.requests_to("cdn") == []


def test_no_room_is_refused_before_the_first_byte(hubs: Hubs, files: dict[str, bytes], tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    hubs.add_hf_file("owner/repo", "m.safetensors", files["checkpoint"], faults=Faults(declared_size=free + 1))
    folders = _folders(tmp_path)
    folders.path(ModelType.CHECKPOINT).mkdir(parents=True)
    error = _fails(
        "disk_full",
        "hf:owner/repo/m.safetensors",
        folders,
        config=_config(hubs, max_download_bytes=None),
        model_type=ModelType.CHECKPOINT,
    )
    assert "not enough room" in error.message
    assert hubs.requests_to("cdn") == []


def test_a_file_of_another_type_than_asked_is_refused_and_removed(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    hubs.add_hf_file("owner/repo", "m.safetensors", files["checkpoint"])
    folders = _folders(tmp_path)
    error = _fails(
        "wrong_type", "hf:owner/repo/m.safetensors", folders, config=_config(hubs), model_type=ModelType.LORA
    )
    assert "is a checkpoint file, not a lora" in error.message
    assert _leftovers(folders) == []


def test_bytes_that_are_no_model_file_are_refused(hubs: Hubs, tmp_path: Path) -> None:
    url = hubs.add_url_file("m.safetensors", b"\x00" * 5000)
    folders = _folders(tmp_path)
    _fails("not_a_model", url, folders, config=_config(hubs), model_type=ModelType.LORA)
    assert _leftovers(folders) == []


def test_an_identical_file_already_there_is_not_downloaded_again(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    hubs.add_hf_file("owner/repo", "m.safetensors", files["checkpoint"])
    folders = _folders(tmp_path)
    first = install("hf:owner/repo/m.safetensors", folders, config=_config(hubs), model_type=ModelType.CHECKPOINT)
    gets = len(hubs.requests_to("cdn", "GET"))
    again = install("hf:owner/repo/m.safetensors", folders, config=_config(hubs), model_type=ModelType.CHECKPOINT)
    assert (again.skipped_existing, again.path, again.sha256) == (True, first.path, first.sha256)
    assert len(hubs.requests_to("cdn", "GET")) == gets


def test_another_file_of_that_name_is_not_overwritten(hubs: Hubs, files: dict[str, bytes], tmp_path: Path) -> None:
    hubs.add_hf_file("owner/repo", "m.safetensors", files["checkpoint"])
    folders = _folders(tmp_path)
    folder = folders.path(ModelType.CHECKPOINT)
    folder.mkdir(parents=True)
    (folder / "m.safetensors").write_bytes(b"mine")
    _fails("exists", "hf:owner/repo/m.safetensors", folders, config=_config(hubs), model_type=ModelType.CHECKPOINT)
    assert (folder / "m.safetensors").read_bytes() == b"mine"


@pytest.mark.parametrize("name", ["../../evil.safetensors", "..\\evil.safetensors", "/etc/evil.safetensors"])
def test_names_that_try_to_leave_their_folder_stay_inside_it(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path, name: str
) -> None:
    hubs.add_hf_file("owner/repo", "m.safetensors", files["lora"])
    folders = _folders(tmp_path)
    done = install("hf:owner/repo/m.safetensors", folders, config=_config(hubs), model_type=ModelType.LORA, name=name)
    assert done.path == folders.path(ModelType.LORA).resolve() / "evil.safetensors"
    assert _leftovers(folders) == ["lora/evil.safetensors"]


@pytest.mark.parametrize(
    ("name", "code"), [("..", "invalid_name"), ("notes.txt", "wrong_type"), (".hidden", "invalid_name")]
)
def test_bad_names_and_extensions_are_refused_before_any_download(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path, name: str, code: str
) -> None:
    hubs.add_hf_file("owner/repo", "m.safetensors", files["lora"])
    _fails(
        code,
        "hf:owner/repo/m.safetensors",
        _folders(tmp_path),
        config=_config(hubs),
        model_type=ModelType.LORA,
        name=name,
    )
    assert hubs.requests_to("cdn") == []


def test_pickle_based_files_are_allowed_but_flagged(hubs: Hubs, files: dict[str, bytes], tmp_path: Path) -> None:
    hubs.add_hf_file("owner/repo", "old.ckpt", files["checkpoint"])
    done = install("hf:owner/repo/old.ckpt", _folders(tmp_path), config=_config(hubs), model_type=ModelType.CHECKPOINT)
    assert done.pickle is True
    assert done.path.name == "old.ckpt"


def test_gated_repository_without_a_token_and_with_a_wrong_one(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    hubs.add_hf_file("owner/gated", "m.safetensors", files["lora"], gated=True)
    folders = _folders(tmp_path)
    error = _fails("gated", "hf:owner/gated/m.safetensors", folders, config=_config(hubs))
    assert "set --hf-token or HF_TOKEN" in error.message
    error = _fails("unauthorized", "hf:owner/gated/m.safetensors", folders, config=_config(hubs, hf_token="hf_wrong_1"))
    assert "--hf-token" in error.message and "hf_wrong_1" not in error.message
    assert _leftovers(folders) == []


def test_unknown_repository_file_and_revision(hubs: Hubs, files: dict[str, bytes], tmp_path: Path) -> None:
    hubs.add_hf_file("owner/repo", "m.safetensors", files["lora"])
    folders = _folders(tmp_path)
    assert (
        "no Hugging Face repository"
        in _fails("not_found", "hf:owner/none/m.safetensors", folders, config=_config(hubs)).message
    )
    assert "has no file" in _fails("not_found", "hf:owner/repo/x.safetensors", folders, config=_config(hubs)).message
    assert "no revision" in _fails("not_found", "hf:owner/repo/m.safetensors@v9", folders, config=_config(hubs)).message


def test_civitai_version_installs_by_its_model_type_with_the_token_only_on_civitai(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    hubs.add_civitai_version(42, [CivitaiFile("style.safetensors", files["lora"])], model_type="LORA", sign_in=True)
    folders = _folders(tmp_path)
    error = _fails("unauthorized", "civitai:42", folders, config=_config(hubs))
    assert "set --civitai-token" in error.message
    done = install("civitai:42", folders, config=_config(hubs, civitai_token=CIVITAI_TOKEN))
    assert done.model_type == ModelType.LORA
    assert done.path == folders.path(ModelType.LORA).resolve() / "style.safetensors"
    civitai = [r for r in hubs.requests_to("civitai") if r.authorization is not None]
    assert civitai and all(r.authorization == f"Bearer {CIVITAI_TOKEN}" for r in civitai)
    cdn = hubs.requests_to("cdn")
    assert cdn and all(r.authorization is None for r in cdn)
    assert "Civitai has no model version 43" in _fails("not_found", "civitai:43", folders, config=_config(hubs)).message


def test_plain_urls_follow_the_host_policy(hubs: Hubs, files: dict[str, bytes], tmp_path: Path) -> None:
    url = hubs.add_url_file("m.safetensors", files["lora"])
    port = url.split(":")[2].split("/")[0]
    folders = _folders(tmp_path)
    lora = ModelType.LORA
    error = _fails("host_not_allowed", url, folders, config=_config(hubs, download_hosts="public"), model_type=lora)
    assert "needs --download-hosts any" in error.message  # plain http
    for target, what in (
        (f"https://127.0.0.1:{port}/files/m.safetensors", "a loopback address"),
        (f"https://localhost:{port}/files/m.safetensors", "not a public host"),
    ):
        error = _fails(
            "host_not_allowed", target, folders, config=_config(hubs, download_hosts="public"), model_type=lora
        )
        assert what in error.message
    assert hubs.requests_to("cdn") == []  # refused before connecting
    _fails("host_not_allowed", url, folders, config=_config(hubs, download_hosts="off"), model_type=lora)
    redirect = hubs.add_redirect("to-file.safetensors", "file:///etc/passwd")
    error = _fails("host_not_allowed", redirect, folders, config=_config(hubs), model_type=lora)
    assert "only http(s)" in error.message
    via = hubs.add_redirect("to-model.safetensors", url)
    done = install(via, folders, config=_config(hubs), model_type=lora)
    assert done.path.read_bytes() == files["lora"]


def test_a_cancel_from_another_thread_stops_between_chunks_and_keeps_the_partial(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    hubs.add_hf_file("owner/repo", "m.safetensors", files["checkpoint"])
    folders = _folders(tmp_path)
    stop = threading.Event()
    started = threading.Event()

    def progress(done: int, total: int | None, speed: float) -> None:
        started.set()
        stop.set()

    error = _fails(
        "cancelled",
        "hf:owner/repo/m.safetensors",
        folders,
        config=_config(hubs),
        model_type=ModelType.CHECKPOINT,
        on_progress=progress,
        should_stop=stop.is_set,
    )
    assert started.is_set() and "cancelled" in error.message
    target = folders.path(ModelType.CHECKPOINT).resolve() / "m.safetensors"
    assert not target.exists()
    assert 0 < partial_path(target).stat().st_size < len(files["checkpoint"])
    assert os.path.basename(partial_path(target)).startswith(".")


def test_a_plain_url_pulled_again_is_compared_with_the_file_there(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    url = hubs.add_url_file("style.safetensors", files["lora"])
    folders = _folders(tmp_path)
    first = install(url, folders, config=_config(hubs), model_type=ModelType.LORA)
    again = install(url, folders, config=_config(hubs), model_type=ModelType.LORA)
    assert (again.skipped_existing, again.sha256, again.path) == (True, first.sha256, first.path)
    hubs.add_url_file("style.safetensors", files["lora"][:-1] + b"\x01")  # the host now serves other bytes
    _fails("exists", url, folders, config=_config(hubs), model_type=ModelType.LORA)
    assert first.path.read_bytes() == files["lora"]
    assert _leftovers(folders) == ["lora/style.safetensors"]


def test_civitai_model_url_takes_the_newest_version_and_a_wrong_token_is_named_not_shown(
    hubs: Hubs, files: dict[str, bytes], tmp_path: Path
) -> None:
    hubs.add_civitai_version(50, [CivitaiFile("old.safetensors", files["lora"])], model_type="LORA", model_id=7)
    hubs.add_civitai_version(51, [CivitaiFile("new.safetensors", files["lora"])], model_type="LORA", model_id=7)
    hubs.add_civitai_version(52, [CivitaiFile("p.safetensors", files["lora"])], model_type="LORA", sign_in=True)
    folders = _folders(tmp_path)
    done = install("https://civitai.com/models/7", folders, config=_config(hubs))
    assert done.path.name == "new.safetensors"
    error = _fails("unauthorized", "civitai:52", folders, config=_config(hubs, civitai_token="civ_wrong_9"))
    assert "--civitai-token" in error.message and "civ_wrong_9" not in error.message


def test_a_malformed_sha256_is_refused_before_any_request(hubs: Hubs, tmp_path: Path) -> None:
    _fails("invalid_sha256", "hf:owner/repo/m.safetensors", _folders(tmp_path), config=_config(hubs), sha256="xyz")
    assert hubs.requests == []
