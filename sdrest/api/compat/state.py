"""What the compatibility APIs remember between requests (``app.extensions["sdrest.compat"]``).

* A1111's options that change later requests (``sd_vae``, ``CLIP_stop_at_last_layers``,
  ``samples_format``, ...), kept in ``<data-dir>/a1111_options.json`` so they survive restarts.
* The newest live preview of each running job, for ``GET /sdapi/v1/progress``. Previews are
  ephemeral events (never stored), so one bus subscription collects them; it is drained when
  progress is asked for, and its queue is bounded, so an unpolled server holds a few KiB at most.
* Which jobs were stopped by ``/interrupt`` or ``/skip`` (A1111 reports that in its progress).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from sdrest.services import Services

log = logging.getLogger("sdrest.compat")

#: Previews kept (one per job, the newest jobs).
MAX_PREVIEWS = 8
#: Interrupted/skipped job ids remembered.
MAX_STOPPED = 64
OPTIONS_FILE = "a1111_options.json"


class CompatState:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._lock = threading.Lock()
        self._options_path: Path = svc.settings.data_dir / OPTIONS_FILE
        self._options: dict[str, Any] = _read_json(self._options_path)
        self._previews: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._stopped: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._subscription = svc.bus.subscribe(max_pending=64)

    # --- options ---

    def options(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._options)

    def set_options(self, values: dict[str, Any]) -> None:
        with self._lock:
            self._options.update(values)
            data = json.dumps(self._options, indent=2, sort_keys=True)
            temporary = self._options_path.with_name(f".{OPTIONS_FILE}.tmp")
            temporary.write_text(data, encoding="utf-8")
            os.replace(temporary, self._options_path)

    # --- previews ---

    def preview(self, job_id: str) -> str | None:
        """The newest preview of ``job_id`` as base64 PNG (no ``data:`` prefix), if any."""
        with self._lock:
            for event in self._subscription.next_batch(timeout=0):
                if event.type == "preview" and event.job_id:
                    image = str(event.data.get("image", ""))
                    self._previews[event.job_id] = image.split(",", 1)[-1]
                    self._previews.move_to_end(event.job_id)
                    while len(self._previews) > MAX_PREVIEWS:
                        self._previews.popitem(last=False)
            return self._previews.get(job_id)

    # --- interrupt and skip ---

    def mark_stopped(self, job_id: str, how: str) -> None:
        with self._lock:
            self._stopped[job_id] = how
            while len(self._stopped) > MAX_STOPPED:
                self._stopped.popitem(last=False)

    def stopped(self, job_id: str) -> str | None:
        with self._lock:
            return self._stopped.get(job_id)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return {}
    return value if isinstance(value, dict) else {}
