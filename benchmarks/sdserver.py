"""sdrest over HTTP against the library's own ``sd-server``, end to end, in the same run.

Both servers are built from the same pinned source and load the same library and the same
model (the synthetic SD1 checkpoint). The same A1111 request, ``POST /sdapi/v1/txt2img``
(both implement it; it answers with the image as base64 once the generation is done), goes
to each in turn, alternating, with the same seed, so that any drift of the machine hits both
alike. Each side gets a warm-up request first (first-call allocations). Printed: the median
wall time per request of each and their ratio sdrest / sd-server (target <= 1.0: no slower).

    python benchmarks/sdserver.py [--size 256] [--steps 4] [--runs 3] [--threads 2]

sd-server is built like sd-cli (benchmarks/sdcli.py), or taken from $SDREST_BENCH_SD_SERVER.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Server, free_port, link_models
from sdcli import ensure_sd_cli, loaded_library, sd_cli_env

PROMPT = "a lighthouse on a cliff at dusk"


class SdServer:
    """The library's own server on a loopback port."""

    def __init__(self, binary: Path, model: Path, library: Path, threads: int, log: Path) -> None:
        self.port = free_port()
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        command = [str(binary), "-m", str(model), "--listen-ip", "127.0.0.1", "--listen-port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "-t", str(threads)], env=sd_cli_env(library), stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sd-server exited: {log.read_text(errors='replace')[-3000:]}")
            try:
                requests.get(self.url("/sdapi/v1/sd-models"), timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("sd-server did not answer")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def txt2img(url: str, size: int, steps: int, seed: int) -> tuple[float, Image.Image]:
    body = {
        "prompt": PROMPT,
        "negative_prompt": "",
        "width": size,
        "height": size,
        "steps": steps,
        "sampler_name": "euler",
        "scheduler": "discrete",
        "cfg_scale": 7.0,
        "seed": seed,
        "batch_size": 1,
    }
    started = time.perf_counter()
    response = requests.post(url, json=body, timeout=1800)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    image = Image.open(io.BytesIO(base64.b64decode(response.json()["images"][0]))).convert("RGB")
    if image.size != (size, size):
        raise RuntimeError(f"{url} answered a {image.size} image for {size}x{size}")
    return elapsed, image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from sdrest._native import load_library
    from sdrest.synthetic import ensure_synthetic_models

    models = ensure_synthetic_models()
    library = load_library().path
    binary = ensure_sd_cli(log=lambda m: print(f"# {m}", flush=True), target="sd-server")
    print(f"# same library on both sides: {library} / {loaded_library(binary, sd_cli_env(library))}")
    times: dict[str, list[float]] = {"sdrest": [], "sd-server": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ours = Server(root, link_models(models, root / "models"), "--model", "sd1", "--threads", str(args.threads))
        ours.start()
        theirs = SdServer(binary, models.checkpoint, library, args.threads, root / "sd-server.log")
        try:
            urls = {"sdrest": ours.url("/sdapi/v1/txt2img"), "sd-server": theirs.url("/sdapi/v1/txt2img")}
            for url in urls.values():
                txt2img(url, args.size, args.steps, seed=1)  # warm-up
            for run in range(args.runs):
                images = {}
                for name, url in urls.items():
                    elapsed, images[name] = txt2img(url, args.size, args.steps, seed=100 + run)
                    times[name].append(elapsed)
                a, b = (np.asarray(images[name], dtype=np.int16) for name in urls)
                print(
                    f"run {run}: sdrest {times['sdrest'][-1]:.3f} s, sd-server {times['sd-server'][-1]:.3f} s; "
                    f"largest pixel difference {int(np.abs(a - b).max())}/255",
                    flush=True,
                )
        finally:
            theirs.stop()
            ours.stop()
    mine, base = statistics.median(times["sdrest"]), statistics.median(times["sd-server"])
    print(
        f"POST /sdapi/v1/txt2img end to end ({args.size}x{args.size}, {args.steps} steps, {args.runs} runs, medians): "
        f"sdrest {mine:.3f} s, sd-server {base:.3f} s; ratio {mine / base:.3f} (target <= 1.0)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
