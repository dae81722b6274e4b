"""``sdrest convert`` and ``sdrest metadata``: model files from the command line.

``convert`` quantises a model to GGUF through the library's own converter (sd-cli ``-M convert``):
a weight type for every tensor it can take, and tensor type rules (``regex=type,...``) for the
others. ``metadata`` prints what a model file's header says (format, tensor count, parameters,
types, metadata, the kind of model it looks like), as JSON, without loading any weights.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["TENSOR_RULES", "add_commands", "default_output", "metadata", "run"]

#: ``regex=type`` pairs, comma-separated (the library's --tensor-type-rules syntax).
TENSOR_RULES = r"^[^=,]+=[A-Za-z0-9_]+(,[^=,]+=[A-Za-z0-9_]+)*$"


def add_commands(commands: argparse._SubParsersAction) -> None:
    convert = commands.add_parser("convert", help="quantise a model file to GGUF (the library's converter)")
    convert.add_argument("input", type=Path, help="model file (.safetensors, .ckpt, .gguf, ...)")
    convert.add_argument(
        "-o", "--output", type=Path, help="GGUF file to write (default: INPUT's name + .TYPE.gguf beside it)"
    )
    convert.add_argument(
        "--type",
        default="q8_0",
        metavar="TYPE",
        help="weight type: f32, f16, bf16, q8_0, q5_0, q5_1, q4_0, q4_1, q4_K, ... (default q8_0)",
    )
    convert.add_argument(
        "--tensor-type-rules", metavar="RULES", help="per-tensor types, 'regex=type,...' (e.g. '^vae\\.=f16,attn=q8_0')"
    )
    convert.add_argument("--vae", type=Path, help="a VAE file to include")
    convert.add_argument(
        "--convert-name", action="store_true", help="rename tensors to the library's own names while converting"
    )
    convert.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    meta = commands.add_parser("metadata", help="print a model file's header (tensors, types, metadata) as JSON")
    meta.add_argument("file", type=Path)
    meta.add_argument("--tensors", action="store_true", help="also list every tensor's shape and type")


def run(args: argparse.Namespace) -> int:
    """Run ``sdrest convert`` or ``sdrest metadata``; the exit status."""
    if args.command == "metadata":
        from sdrest.models.headers import HeaderError

        try:
            print(json.dumps(metadata(args.file, tensors=args.tensors), indent=2))
        except (HeaderError, OSError) as exc:
            print(f"sdrest metadata: {args.file}: {exc}", file=sys.stderr)
            return 1
        return 0
    return _convert(args)


def metadata(path: Path, *, tensors: bool = False) -> dict[str, Any]:
    """The header summary of a model file (:class:`HeaderError` if it is not one)."""
    from sdrest.models.detect import guess_kind, header_summary
    from sdrest.models.headers import read_header

    header = read_header(Path(path))
    summary: dict[str, Any] = {"file": Path(path).name, "bytes": os.path.getsize(path), **header_summary(header)}
    kind = guess_kind(header.tensors)
    if kind is not None:
        summary["kind"] = kind
    if tensors:
        summary["tensor_list"] = [
            {"name": name, "shape": list(info.shape) if info.shape is not None else None, "dtype": info.dtype}
            for name, info in header.tensors.items()
        ]
    return summary


def default_output(source: Path, weight_type: str) -> Path:
    """``model.safetensors`` -> ``model.q8_0.gguf`` beside it."""
    return source.with_name(f"{source.stem}.{weight_type.lower()}.gguf")


def _convert(args: argparse.Namespace) -> int:
    from sdrest.engine import convert
    from sdrest.errors import SdrestError

    rules = args.tensor_type_rules
    if rules is not None and not re.fullmatch(TENSOR_RULES, rules):
        print("sdrest convert: --tensor-type-rules: expected 'regex=type,...'", file=sys.stderr)
        return 2
    output = args.output or default_output(args.input, args.type)
    if output.exists() and not args.force:
        print(f"sdrest convert: {output} exists (--force overwrites it)", file=sys.stderr)
        return 1
    try:
        convert(
            args.input,
            output,
            output_type=args.type,
            vae_path=args.vae,
            tensor_type_rules=rules,
            convert_name=args.convert_name,
        )
    except (SdrestError, ValueError, OSError) as exc:
        print(f"sdrest convert: {exc}", file=sys.stderr)
        return 1
    print(output)
    return 0
