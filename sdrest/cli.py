"""The ``sdrest`` command (also installed as ``stable-diffusion-rest-server``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sdrest import __version__


def version_text() -> str:
    """sdrest's version and the native library's (without failing when it is missing)."""
    from sdrest._native import build_info, load_library
    from sdrest._native.cudart import runtime_version
    from sdrest.errors import NativeLibraryError
    from sdrest.gpus import cuda_from_build, gpu_lines

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
        lines.extend(gpu_lines(info.get("backends", []), cuda_from_build(info, runtime_version())))
    lines.append(f"  library: {native.path} ({native.origin})")
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="print sdrest's and the native library's versions",
        )

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
    worker = commands.add_parser(
        "worker", help="run generation workers only, for API nodes sharing the --store (serve --no-worker)"
    )
    from sdrest.settings import Settings

    for command in (serve, worker):
        Settings.add_arguments(command)
        command.add_argument(
            "--print-config",
            action="store_true",
            help="print the resolved settings (defaults < config < env < flags) and exit",
        )

    serve.add_argument(
        "--pull",
        action="append",
        metavar="RECIPE",
        default=argparse.SUPPRESS,
        help="download what the recipe misses before serving (repeatable; see sdrest pull --list)",
    )
    commands.add_parser("version", help="same as --version")
    from sdrest import pull

    pull.add_command(commands)
    _add_auth_commands(commands)
    from sdrest import modelfiles

    modelfiles.add_commands(commands)
    return parser


def _add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``/``--data-dir``/``--store``, read like ``sdrest serve`` reads them (the auth
    store is the data folder's auth.sqlite3, or the --store PostgreSQL database)."""
    parser.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS, help="JSON or YAML settings file (also SDREST_CONFIG)"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="data folder holding auth.sqlite3 (default: from the config, SDREST_DATA_DIR, or ./data)",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="postgresql://USER@HOST[:PORT]/DB: the users and keys every node sharing that database uses "
        "(default: from the config or SDREST_STORE; sqlite:///... or none: auth.sqlite3 in the data folder)",
    )


def _add_password_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password",
        metavar="P",
        help="the password (visible to other local users in the process list; prefer --password-stdin or the prompt)",
    )
    source.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (one trailing newline is dropped)",
    )


def _add_auth_commands(commands: argparse._SubParsersAction) -> None:
    from sdrest.auth.store import ROLES

    users = commands.add_parser("users", help="manage local users (auth.sqlite3 in the data folder, or --store)")
    users_cmd = users.add_subparsers(dest="users_command", metavar="ACTION")
    add = users_cmd.add_parser("add", help="add a user (prompts for the password on a terminal)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="user", help="role (default: user)")
    _add_password_arguments(add)
    users_cmd.add_parser("list", help="list users")
    passwd = users_cmd.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    _add_password_arguments(passwd)
    remove = users_cmd.add_parser("remove", help="remove a user and revoke the API keys it owns")
    remove.add_argument("name")
    role = users_cmd.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    for action, text in (
        ("disable", "stop a user (and its API keys) from authenticating"),
        ("enable", "let a disabled user authenticate again"),
        ("revoke-sessions", "revoke every token issued to an account so far (any --auth kind)"),
    ):
        users_cmd.add_parser(action, help=text).add_argument("name")

    keys = commands.add_parser("keys", help="manage API keys (auth.sqlite3 in the data folder, or --store)")
    keys_cmd = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    create = keys_cmd.add_parser("create", help="create a key (printed once, on standard output)")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--owner", metavar="USER", help="the user the key acts for (default: none)")
    create.add_argument(
        "--expires",
        metavar="WHEN",
        help="lifetime (30d, 12h, 90m, 2w) or ISO date/time (no zone: UTC; a date: 00:00 UTC)",
    )
    keys_cmd.add_parser("list", help="list keys (prefix only, never the key)")
    revoke = keys_cmd.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key", metavar="ID_OR_PREFIX")
    for parser in (users, keys, *users_cmd.choices.values(), *keys_cmd.choices.values()):
        _add_store_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "selftest":
        from sdrest import selftest

        return selftest.main(sys.stdout, sys.stderr, size=args.size, steps=args.steps, threads=args.threads)
    if args.command in ("serve", "worker"):
        return _serve(vars(args))
    if args.command == "version":
        print(version_text())
        return 0
    if args.command in ("users", "keys"):
        from sdrest.auth import commands as auth_commands

        return auth_commands.run(vars(args), parser)
    if args.command == "pull":
        from sdrest import pull

        return pull.run(vars(args))
    if args.command in ("convert", "metadata"):
        from sdrest import modelfiles

        return modelfiles.run(args)
    parser.print_help()
    return 2


def _serve(flags: dict[str, object]) -> int:
    import json

    from sdrest.settings import Settings, SettingsError

    command = str(flags.pop("command", None) or "serve")
    print_config = flags.pop("print_config", False)
    recipes = [str(name) for name in flags.pop("pull", None) or []]  # type: ignore[attr-defined]
    try:
        settings = Settings.load(flags)
    except SettingsError as exc:
        print(f"sdrest {command}: {exc}", file=sys.stderr)
        return 2
    if print_config:
        print(json.dumps(settings.to_dict(redact=True), indent=2))
        return 0
    if settings.recipes is not None:  # a broken catalogue is a bad setting, said before serving
        from sdrest.models.recipes import RecipeError, load_recipes

        try:
            load_recipes(settings.recipes)
        except RecipeError as exc:
            print(f"sdrest {command}: --recipes: {exc}", file=sys.stderr)
            return 2
    if recipes:
        from sdrest.pull import pull_recipes, with_pulled_model

        status = pull_recipes(recipes, settings)
        if status:
            return status
        settings = with_pulled_model(settings, recipes)
    import os

    from sdrest.auth.store import AuthStoreError
    from sdrest.auth.web import SecretError
    from sdrest.datadir import PRIVATE_UMASK, DataDirBusyError
    from sdrest.jobs import JobStoreError
    from sdrest.server import serve

    os.umask(PRIVATE_UMASK)  # prompts and images are nobody else's business (the worker inherits it)
    try:
        if command == "worker":
            from sdrest.worker import node

            return node.run(settings)
        return serve(settings)
    except (DataDirBusyError, SecretError, JobStoreError, AuthStoreError) as exc:
        print(f"sdrest {command}: {exc}", file=sys.stderr)
        return 1


def server_main(argv: Sequence[str] | None = None) -> int:
    """``stable-diffusion-rest-server``: the spec's name for ``sdrest serve``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in (
        "--version",
        "version",
        "selftest",
        "serve",
        "users",
        "keys",
        "convert",
        "metadata",
        "pull",
        "-h",
        "--help",
    ):
        return main(args)
    return main(["serve", *args])


if __name__ == "__main__":
    raise SystemExit(main())
