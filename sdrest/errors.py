"""sdrest's exception hierarchy.

Every error sdrest raises on purpose derives from :class:`SdrestError`, so callers can catch
one type; the subclasses say which layer failed.
"""

from __future__ import annotations

from collections.abc import Sequence


class SdrestError(Exception):
    """Base class of all sdrest errors."""


class NativeLibraryError(SdrestError, OSError):
    """The native stable-diffusion library is missing or does not match the binding."""


class NativeCallError(SdrestError):
    """A native call failed; carries the library's own log lines from that call."""

    def __init__(self, message: str, log_lines: Sequence[str] = ()) -> None:
        self.log_lines: tuple[str, ...] = tuple(log_lines)
        detail = "; ".join(line.strip() for line in self.log_lines if line.strip())
        super().__init__(f"{message}: {detail}" if detail else message)
        self.summary = message


class ModelLoadError(NativeCallError):
    """The library could not load a model (corrupt file, wrong type, unsupported layout)."""


class GenerationError(NativeCallError):
    """The library returned no result for a generation, upscale or conversion."""


class GenerationCancelled(GenerationError):
    """A generation ended early because :meth:`sdrest.engine.Context.cancel` asked it to."""


class StoreUnavailable(SdrestError):
    """A database cannot be used for now: PostgreSQL unreachable, restarting or refusing
    connections, no pooled connection free in time, or SQLite locked by another process beyond
    its busy timeout. Transient, unlike the other errors: the API answers 503 with
    ``Retry-After``, workers keep what they must store and try again.

    ``str()`` says which store and why (for the log: libpq's reason, never the password);
    :attr:`public` is what a client is told (no host, port or URL).
    """

    def __init__(self, what: str, reason: str, public: str) -> None:
        super().__init__(f"{what} is unavailable: {reason}")
        self.what = what
        self.reason = reason
        self.public = f"{what} is unavailable: {public}"
