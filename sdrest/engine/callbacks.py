"""Route the library's process-global callbacks to the Python call that is running.

stable-diffusion.cpp has one log, one progress and one preview callback per *process*
(``sd_set_*_callback``). :class:`NativeHooks` installs C callbacks once per opened library,
keeps the cffi callback objects referenced for as long as the library can call them, and
dispatches to the handlers of the current :meth:`NativeHooks.session`. Sessions hold a lock,
so native calls through one library are serialised: that is the price of global callbacks,
and it is free in sdrest, where one generation thread owns the library.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from sdrest._native import NativeLibrary, ffi
from sdrest.engine.enums import parse_enum
from sdrest.engine.images import image_from_sd

log = logging.getLogger("sdrest.native")

_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}

ProgressHandler = Callable[[int, int, float], None]
PreviewHandler = Callable[[int, list[Image.Image], bool], None]


@dataclass
class CallCapture:
    """What one session saw: recent log lines (for error messages) and the last progress."""

    lines: collections.deque[tuple[int, str]] = field(default_factory=lambda: collections.deque(maxlen=200))
    last_step: int = 0
    steps: int = 0

    def problems(self) -> list[str]:
        """Warning and error lines, which is what explains a failed call."""
        return [text for level, text in self.lines if level >= logging.WARNING]

    def tail(self, count: int = 20) -> list[str]:
        return [text for _, text in list(self.lines)[-count:]]


class NativeHooks:
    """Owns the C callbacks of one library and the lock that serialises its use."""

    def __init__(self, native: NativeLibrary) -> None:
        self.native = native
        self.lock = threading.RLock()
        self._capture: CallCapture | None = None
        self._on_progress: ProgressHandler | None = None
        self._on_preview: PreviewHandler | None = None
        self._on_log: Callable[[int, str], None] | None = None
        # The callback objects must outlive every call the library may make into them.
        self._log_cb = ffi.callback("sd_log_cb_t", self._log, onerror=self._callback_error)
        self._progress_cb = ffi.callback("sd_progress_cb_t", self._progress, onerror=self._callback_error)
        self._preview_cb = ffi.callback("sd_preview_cb_t", self._preview, onerror=self._callback_error)
        native.lib.sd_set_log_callback(self._log_cb, ffi.NULL)
        native.lib.sd_set_progress_callback(self._progress_cb, ffi.NULL)

    @contextlib.contextmanager
    def session(
        self,
        *,
        on_progress: ProgressHandler | None = None,
        on_preview: PreviewHandler | None = None,
        preview_mode: str | int = "proj",
        preview_interval: int = 1,
        preview_noisy: bool = False,
        on_log: Callable[[int, str], None] | None = None,
    ) -> Iterator[CallCapture]:
        """Hold the library for one native call and route its callbacks to these handlers.
        Previews show the denoised estimate, or the noisy latent with ``preview_noisy``."""
        with self.lock:
            capture = CallCapture()
            self._capture, self._on_progress, self._on_preview, self._on_log = (
                capture,
                on_progress,
                on_preview,
                on_log,
            )
            lib = self.native.lib
            if on_preview is not None:
                mode = parse_enum(lib, "enum preview_t", preview_mode, "preview_mode")
                lib.sd_set_preview_callback(
                    self._preview_cb,
                    mode,
                    max(1, int(preview_interval)),
                    not preview_noisy,
                    bool(preview_noisy),
                    ffi.NULL,
                )
            try:
                yield capture
            finally:
                if on_preview is not None:
                    lib.sd_set_preview_callback(ffi.NULL, 0, 1, False, False, ffi.NULL)
                self._capture = self._on_progress = self._on_preview = self._on_log = None

    # --- called from C (on the thread that made the native call) ---

    def _log(self, level: int, text: Any, _data: Any) -> None:
        message = ffi.string(text).decode("utf-8", "replace").rstrip() if text != ffi.NULL else ""
        py_level = _LEVELS.get(int(level), logging.INFO)
        log.log(py_level, "%s", message)
        if self._capture is not None:
            self._capture.lines.append((py_level, message))
        if self._on_log is not None:
            self._on_log(py_level, message)

    def _progress(self, step: int, steps: int, seconds: float, _data: Any) -> None:
        if self._capture is not None:
            self._capture.last_step, self._capture.steps = step, steps
        if self._on_progress is not None:
            self._on_progress(step, steps, seconds)

    def _preview(self, step: int, frame_count: int, frames: Any, is_noisy: bool, _data: Any) -> None:
        if self._on_preview is None or frames == ffi.NULL:
            return
        # The library frees the frames when we return: copy them now.
        images = [image_from_sd(frames[i]) for i in range(frame_count)]
        self._on_preview(step, images, bool(is_noisy))

    @staticmethod
    def _callback_error(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        # An exception must never unwind into C; report it and let the native call go on.
        log.error("error in a native callback handler", exc_info=(exc_type, exc, tb))


@functools.cache
def hooks_for(native: NativeLibrary) -> NativeHooks:
    """The one :class:`NativeHooks` of a library (callbacks are per process, not per context)."""
    return NativeHooks(native)
