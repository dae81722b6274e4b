"""What importing the web app pulls in: the native binding and JWT stay out until needed.

The layer rules themselves (engine, jobs, models and worker know nothing of Flask or the API;
auth and retention do not reach up into the API) are import-linter contracts in pyproject.toml,
checked by .ci/lint before the tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sdrest

PACKAGE_ROOT = str(Path(sdrest.__file__).resolve().parents[1])


def _loaded_after(statement: str, modules: list[str]) -> list[str]:
    probe = f"import sys, json; {statement}; print(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=PACKAGE_ROOT, check=True
    )
    return json.loads(result.stdout)


def test_importing_the_app_loads_neither_cffi_nor_jwt() -> None:
    assert _loaded_after("import sdrest.app", ["cffi", "flask_jwt_extended", "flask"]) == ["flask"]


def test_the_worker_side_loads_no_flask() -> None:
    # What the worker process imports to run jobs: no web framework in its memory.
    loaded = _loaded_after(
        "import sdrest.worker.runner, sdrest.engine, sdrest.jobs, sdrest.models",
        ["flask", "werkzeug", "flask_jwt_extended", "sdrest.api"],
    )
    assert loaded == []


def test_lazy_re_exports_are_all_listed_and_resolve() -> None:
    # __all__ is a literal (for linters and type checkers); it must name exactly the lazy exports.
    import sdrest._native
    import sdrest.models

    for package in (sdrest.models, sdrest._native):
        assert sorted(package.__all__) == sorted(package._EXPORTS)
    for name in sdrest.models.__all__:  # each resolves (the worker-side modules, not cffi)
        assert getattr(sdrest.models, name) is not None
