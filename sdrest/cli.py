"""The ``sdrest`` command (also installed as ``stable-diffusion-rest-server``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sdrest import __version__


def version_text() -> str:
    """sdrest's version and the native library's (without failing when it is missing)."""
    from sdrest._native import build_info, load_library
    from sdrest.errors import NativeLibraryError

    lines = [f"sdrest {__version__}"]
    try:
        native = load_library()
    except NativeLibraryError as exc:
        lines.append(f"stable-diffusion.cpp: unavailable ({exc})")
        return "\n".join(lines)
    info = build_info()
    lines.append(f"stable-diffusion.cpp {native.version} (commit {native.commit})")
    if info:
        lines.append(f"  source: {info.get('sd_cpp_origin', '?')}")
        lines.append(f"  backends: {', '.join(info.get('backends', []))}; {info.get('compiler', '')}")
    lines.append(f"  library: {native.path} ({native.origin})")
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print sdrest's and the native library's versions")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sdrest", description="Self-hosted Stable Diffusion server.")
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    selftest = commands.add_parser("selftest", help="check this install offline with a synthetic model")
    selftest.add_argument("--size", type=int, default=64, help="image width and height (default 64)")
    selftest.add_argument("--steps", type=int, default=1, help="sampling steps (default 1)")
    selftest.add_argument("--threads", type=int, default=-1, help="CPU threads (-1: physical cores)")

    commands.add_parser("version", help="same as --version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "selftest":
        from sdrest import selftest

        return selftest.main(sys.stdout, sys.stderr, size=args.size, steps=args.steps, threads=args.threads)
    if args.command == "version":
        print(version_text())
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
