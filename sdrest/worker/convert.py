"""A model conversion job in the worker: the library's converter, writing beside the source.

The GGUF is written under a temporary hidden name in the target folder (a scan skips hidden
files) and linked to its final name only when complete, never over an existing file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdrest.worker.runner import StageClock


def convert(params: dict[str, Any], clock: StageClock) -> dict[str, Any]:
    """Run one conversion job; its result (the output's name, type and size)."""
    from sdrest.engine import convert as convert_file

    output = Path(params["output_path"])
    temporary = output.with_name(f".{output.name}.tmp-{secrets.token_hex(4)}")
    clock.enter("converting")
    try:
        convert_file(
            params["input_path"],
            temporary,
            output_type=params["weight_type"],
            vae_path=params.get("vae_path"),
            tensor_type_rules=params.get("tensor_type_rules"),
            convert_name=bool(params.get("convert_name")),
        )
        clock.enter("writing")
        os.link(temporary, output)  # fails if the name was taken meanwhile: nothing is overwritten
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return {
        "images": [],
        "model": params["model"],
        "output": {"name": output.name, "type": params["type"], "bytes": output.stat().st_size},
    }
