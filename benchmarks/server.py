"""Server benchmarks, each against a baseline measured in the same run.

1. Start-up: seconds from launching ``sdrest serve`` to the first answered request.
2. End-to-end job time through HTTP (``POST /api/v1/generate`` with ``wait``) divided by the
   bare engine call for the same parameters in a loaded Context (target <= 1.05, 256x256).
3. ``GET /api/v1/status`` latency p50/p99 while a generation runs and 64 SSE clients are
   connected, next to the same latency on the idle server.

    python benchmarks/server.py [--size 256] [--steps 4] [--runs 2] [--streams 64]
"""

from __future__ import annotations

import argparse
import shlex
import socket
import statistics
import tempfile
import time
from pathlib import Path

import requests

from harness import Server, link_models  # benchmarks/harness.py: this script's folder is on sys.path

PROMPT = "a lighthouse on a cliff at dusk"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def status_latencies(server: Server, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        requests.get(server.url("/api/v1/status"), timeout=30).raise_for_status()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--server-args", default="", help="more `sdrest serve` flags, e.g. '--preview none'")
    args = parser.parse_args()

    from sdrest.engine import Context
    from sdrest.synthetic import ensure_synthetic_models

    models = ensure_synthetic_models()
    options = {"width": args.size, "height": args.size, "steps": args.steps, "sampler": "euler", "cfg_scale": 7.0}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models_dir = link_models(models, root / "models")

        # 1. start-up to first answered request
        server = Server(
            root, models_dir, "--model", "sd1", "--max-event-streams", str(args.streams), *shlex.split(args.server_args)
        )
        started = time.perf_counter()
        server.start(wait_for_worker=False)
        startup = time.perf_counter() - started
        print(f"start-up to first answered request: {startup:.3f} s (target < 1 s)")
        deadline = time.monotonic() + 120
        while server.status()["loaded_model"] != "sd1" and time.monotonic() < deadline:
            time.sleep(0.2)

        # 3a. idle latency baseline
        idle = status_latencies(server, 200)

        # 2. end-to-end through HTTP vs the bare engine (interleaved, same machine state)
        http_times: list[float] = []
        bare_times: list[float] = []
        with Context(model_path=models.checkpoint, n_threads=2, vae_decode_only=False) as context:
            context.txt2img(PROMPT, **options, seed=0)  # warm-up
            # The server's worker warms up too (its first generation sets up the backend's buffers).
            requests.post(
                server.url("/api/v1/generate"),
                json={"prompt": PROMPT, **options, "seed": 0, "wait": True, "base64": False},
                timeout=900,
            ).raise_for_status()
            for run in range(args.runs):
                seed = 500 + run
                t0 = time.perf_counter()
                response = requests.post(
                    server.url("/api/v1/generate"),
                    json={"prompt": PROMPT, **options, "seed": seed, "wait": True, "base64": False},
                    timeout=900,
                )
                response.raise_for_status()
                http_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                context.txt2img(PROMPT, **options, seed=seed)
                bare_times.append(time.perf_counter() - t0)
                print(f"run {run}: HTTP {http_times[-1]:.2f} s, bare engine {bare_times[-1]:.2f} s", flush=True)
        ratio = statistics.median(http_times) / statistics.median(bare_times)
        print(
            f"end-to-end job through HTTP / bare engine call ({args.size}x{args.size}, {args.steps} steps): "
            f"{ratio:.3f} (target <= 1.05)"
        )

        # 3b. latency under load: a generation running and N event streams open
        sockets = []
        for _ in range(args.streams):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
            sockets.append(sock)
        job = requests.post(
            server.url("/api/v1/generate"), json={"prompt": PROMPT, **options, "seed": 1, "wait": False}, timeout=60
        ).json()
        while requests.get(server.url(f"/api/v1/generate/{job['job_id']}"), timeout=30).json()["status"] != "running":
            time.sleep(0.05)
        busy = status_latencies(server, 200)
        for sock in sockets:
            sock.close()
        print(f"GET /api/v1/status idle: p50 {percentile(idle, 50):.1f} ms, p99 {percentile(idle, 99):.1f} ms")
        print(
            f"GET /api/v1/status with a generation running and {args.streams} SSE clients: "
            f"p50 {percentile(busy, 50):.1f} ms, p99 {percentile(busy, 99):.1f} ms "
            f"(ratio p50 {percentile(busy, 50) / percentile(idle, 50):.2f})"
        )
        requests.delete(server.url(f"/api/v1/generate/{job['job_id']}"), timeout=30)
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
