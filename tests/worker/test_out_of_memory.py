"""A generation that the library could not find memory for fails with ``out_of_memory``, told
apart from other failures by the library's own log lines (as stable-diffusion.cpp and ggml
print them). A real one on the CPU here, under an address-space limit; on a GPU in
tests/test_gpus.py."""

from __future__ import annotations

import re
import resource
from pathlib import Path

import pytest

from sdrest._native.buildinfo import build_info
from sdrest.errors import GenerationError, ModelLoadError
from sdrest.worker.process import error_payload
from server_helpers import FAST, Server, link_models

ALLOCATION_FAILURES = (
    "unet alloc compute buffer failed",
    "vae alloc compute buffer failed",
    "clip alloc params backend buffer failed, num_tensors = 196",
    "unet alloc partial runtime params backend buffer failed, num_tensors = 686",
    (
        "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 262144.00 MiB on device 0: "
        "cudaMalloc failed: out of memory"
    ),
    "ggml_gallocr_reserve_n: failed to allocate CUDA0 buffer of size 274877906944",
    "ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 1099511627776",
    "unet: failed to allocate the compute buffer",
)


@pytest.mark.parametrize("line", ALLOCATION_FAILURES)
def test_allocation_failure_is_out_of_memory(line: str) -> None:
    exc = GenerationError("generation failed", ["loading model", line, "generate_image failed"])
    payload = error_payload(exc)
    assert payload["code"] == "out_of_memory"
    assert "smaller size or batch" in payload["message"]
    assert line in payload["log"]  # the library's own words travel with it


def test_a_model_too_big_to_load_is_out_of_memory_too() -> None:
    exc = ModelLoadError("could not load model", ["unet alloc params backend buffer failed, num_tensors = 686"])
    assert error_payload(exc)["code"] == "out_of_memory"


def test_other_library_failures_keep_their_codes() -> None:
    graph = "ggml_backend_sched_alloc_graph: failed to allocate graph, reserving (backend_ids_changed = 0)"
    assert (
        error_payload(GenerationError("generation failed", ["get_learned_condition failed", graph]))["code"]
        == "generation_failed"
    )
    assert (
        error_payload(ModelLoadError("could not load model", ["invalid safetensors header"]))["code"]
        == "model_load_failed"
    )


@pytest.mark.slow
def test_a_real_allocation_failure_fails_the_job_and_the_next_one_runs(models, tmp_path: Path) -> None:
    """The worker's address space is capped from outside (prlimit, as an administrator's limit
    would), so the library's own allocation of a 512x512 sampling buffer fails for real."""
    if "cuda" in build_info().get("backends", []):
        pytest.skip(
            "a CUDA build allocates its buffers on the GPU, not in the address space capped here "
            "(tests/test_gpus.py fails a job out of GPU memory instead)"
        )
    server = Server(tmp_path, link_models(models, tmp_path / "models"), "--model", "sd1").start()
    try:
        assert server.wait_job(server.submit(**FAST)["job_id"])["status"] == "completed"  # model loaded
        pid = server.status()["worker"]["pid"]
        size = int(re.search(r"VmSize:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1)) * 1024
        _, hard = resource.prlimit(pid, resource.RLIMIT_AS)
        resource.prlimit(pid, resource.RLIMIT_AS, (size + (96 << 20), hard))  # far less than 512x512 needs
        failed = server.wait_job(server.submit(**{**FAST, "width": 512, "height": 512})["job_id"])
        resource.prlimit(pid, resource.RLIMIT_AS, (hard, hard))
        assert failed["status"] == "failed" and failed["error"]["code"] == "out_of_memory", failed
        assert any("alloc compute buffer failed" in line for line in failed["error"]["log"])
        after = server.wait_job(server.submit(**FAST)["job_id"])
        assert after["status"] == "completed" and server.status()["worker"]["pid"] == pid  # same worker
    finally:
        server.stop()
