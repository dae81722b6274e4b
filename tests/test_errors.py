"""Every error sdrest raises on purpose derives from SdrestError (sdrest/errors.py), so a caller
can catch one type; the subclasses say which layer failed."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import sdrest
from sdrest.errors import SdrestError

#: Modules that run something when imported (entry points), not libraries.
_SCRIPTS = {"__main__"}


def _sdrest_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(sdrest.__path__, "sdrest."):
        if info.name.rsplit(".", 1)[-1] not in _SCRIPTS and ".webui" not in info.name:
            names.append(info.name)
    return names


def test_every_exception_class_of_sdrest_derives_from_sdrest_error() -> None:
    found = {}
    for name in _sdrest_modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    # The walk really sees the package's errors (not an empty list that passes by itself).
    assert {
        "sdrest.settings.SettingsError",
        "sdrest.auth.store.AuthStoreError",
        "sdrest.api.errors.ApiError",
        "sdrest.models.paths.ModelNotFoundError",
        "sdrest.models.headers.HeaderError",
        "sdrest.auth.commands.UsageError",
    } <= set(found)
    strays = sorted(name for name, cls in found.items() if not issubclass(cls, SdrestError))
    assert strays == []


def test_refusals_keep_their_builtin_meaning_too() -> None:
    # Callers that catch the builtin kinds (a bad value, a missing name) keep working.
    from sdrest.auth.store import AmbiguousKeyError, AuthStoreError, DuplicateUserError, UserNotFoundError
    from sdrest.models.headers import HeaderError
    from sdrest.models.paths import ModelNotFoundError
    from sdrest.settings import SettingsError

    assert issubclass(SettingsError, ValueError) and issubclass(HeaderError, ValueError)
    assert issubclass(ModelNotFoundError, LookupError) and issubclass(UserNotFoundError, LookupError)
    assert all(issubclass(cls, AuthStoreError) for cls in (UserNotFoundError, DuplicateUserError, AmbiguousKeyError))
