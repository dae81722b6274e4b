"""Queue an image, follow its progress live (Server-Sent Events), then save the result.

    python progress_sse.py "a lighthouse at dusk" --steps 20
    python progress_sse.py "a cat" --server http://gpu-box:8080 --api-key sk-... --out cat

Needs only ``requests``. The answer to ``"wait": false`` is the queued job; its
``links.events`` stream says ``progress`` (step, steps, stage) until ``completed``, ``failed``
or ``cancelled``. Reconnecting with ``Last-Event-ID`` would replay what was missed.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Iterator

import requests

FINISHED = ("completed", "failed", "cancelled")


def sse(response: requests.Response) -> Iterator[tuple[str, dict]]:
    """(event, data) pairs of a text/event-stream; comments (keep-alives) are skipped."""
    event, data = "message", []
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt")
    parser.add_argument("--server", default="http://localhost:8080")
    parser.add_argument("--api-key", help="for a server started with --auth api-key")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=-1)
    parser.add_argument("--out", default="progress", help="file name prefix of the saved images")
    args = parser.parse_args()
    headers = {"X-API-Key": args.api_key} if args.api_key else {}

    response = requests.post(f"{args.server}/api/v1/generate", headers=headers, timeout=60, json={
        "prompt": args.prompt, "width": args.width, "height": args.height, "steps": args.steps,
        "seed": args.seed, "wait": False})
    job = response.json()
    if not response.ok:
        print(f"refused: {job['error']['message']}", file=sys.stderr)
        return 1
    print(f"queued {job['job_id']}")
    status = job["status"]
    with requests.get(args.server + job["links"]["events"], headers=headers, stream=True,
                      timeout=(10, 120)) as stream:
        for event, data in sse(stream):
            if event == "progress":
                print(f"\r{data.get('stage', '')}: step {data.get('step', 0)}/{data.get('steps', 0)}   ",
                      end="", flush=True)
            elif event == "state":
                status = data["status"]
            elif event in FINISHED:
                status = event
            if status in FINISHED:
                break
    print(f"\n{status}")
    result = requests.get(f"{args.server}/api/v1/generate/{job['job_id']}", params={"base64": "true"},
                          headers=headers, timeout=60).json()
    if result["status"] != "completed":
        print((result.get("error") or {}).get("message", result["status"]), file=sys.stderr)
        return 1
    for image in result["images"]:
        name = f"{args.out}-{image['index']}.{image['format']}"
        with open(name, "wb") as handle:
            handle.write(base64.b64decode(image["data"]))
        print(f"saved {name} (seed {image['seed']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
