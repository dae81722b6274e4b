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
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print sdrest's and the native library's versions")

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

    serve = commands.add_parser("serve", help="run the HTTP server")
    from sdrest.settings import Settings

    Settings.add_arguments(serve)
    serve.add_argument("--print-config", action="store_true",
                       help="print the resolved settings (defaults < config < env < flags) and exit")

    commands.add_parser("version", help="same as --version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "selftest":
        from sdrest import selftest

        return selftest.main(sys.stdout, sys.stderr, size=args.size, steps=args.steps, threads=args.threads)
    if args.command == "serve":
        return _serve(vars(args))
    if args.command == "version":
        print(version_text())
        return 0
    parser.print_help()
    return 2


def _serve(flags: dict[str, object]) -> int:
    import json

    from sdrest.settings import Settings, SettingsError

    flags.pop("command", None)
    print_config = flags.pop("print_config", False)
    try:
        settings = Settings.load(flags)
    except SettingsError as exc:
        print(f"sdrest serve: {exc}", file=sys.stderr)
        return 2
    if print_config:
        print(json.dumps(settings.to_dict(), indent=2))
        return 0
    from sdrest.server import serve

    return serve(settings)


def server_main(argv: Sequence[str] | None = None) -> int:
    """``stable-diffusion-rest-server``: the spec's name for ``sdrest serve``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("--version", "version", "selftest", "serve", "-h", "--help"):
        return main(args)
    return main(["serve", *args])


if __name__ == "__main__":
    raise SystemExit(main())
