"""The models a worker keeps loaded, least recently used first out: at most
``--max-loaded-models`` contexts and, with ``--max-model-memory-mb``, at most that much weight
memory, so jobs that alternate between a few checkpoints load each one once.

The memory of a loaded model is what the library reports for its weights (RAM + VRAM, the
``total params memory`` line). A model not loaded yet is estimated before its load: what it
took when this worker last loaded it, else the size of its files (checkpoint and component
files), which is what the library allocates unless it converts the weights to another type.
Once loaded, its real size counts, and if that is over the budget more models go.
"""

from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


def model_key(spec: dict[str, Any]) -> str:
    """What makes two loads the same: the file and every context option."""
    return json.dumps([spec["path"], spec.get("options") or {}], sort_keys=True)


def file_bytes(spec: dict[str, Any]) -> int:
    """The size of a model's files: its checkpoint and every ``*_path`` component option."""
    options = spec.get("options") or {}
    paths = [spec.get("path"), *(value for key, value in options.items() if key.endswith("_path"))]
    total = 0
    for path in paths:
        if isinstance(path, str) and path:
            try:
                total += os.path.getsize(path)
            except OSError:
                pass  # the load itself reports a missing file
    return total


def weight_bytes(memory: dict[str, int] | None) -> int | None:
    """The library's count of a model's weight bytes (RAM + VRAM); None if it did not say."""
    if memory is None:
        return None
    return int(memory.get("ram_bytes", 0)) + int(memory.get("vram_bytes", 0))


@dataclass
class Resident:
    """One loaded model: its engine context and what it took."""

    key: str
    spec: dict[str, Any]  # {"name", "path", "options"} as the supervisor sent it
    context: Any  # sdrest.engine.Context
    seconds: float  # how long the load took
    memory: dict[str, int] | None  # the library's count of weight bytes (ram_bytes, vram_bytes)

    @property
    def size(self) -> int:
        """The bytes it counts against the budget: the library's count, else its files' size."""
        measured = weight_bytes(self.memory)
        return measured if measured is not None else file_bytes(self.spec)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec["name"],
            "path": self.spec.get("path"),
            "options": self.spec.get("options") or {},
            "load_seconds": round(self.seconds, 3),
            "memory": self.memory,
        }


class ResidentModels:
    """An LRU of loaded contexts; :meth:`get` marks an entry as just used.

    ``limit``: most models; ``budget``: most weight bytes (0: no budget).
    """

    def __init__(self, limit: int, budget: int = 0) -> None:
        self.limit = max(1, limit)
        self.budget = max(0, budget)
        self._entries: collections.OrderedDict[str, Resident] = collections.OrderedDict()
        self._sizes: dict[str, int] = {}  # what each model measured when this worker last loaded it

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Resident | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def add(self, entry: Resident) -> None:
        self._entries[entry.key] = entry
        self._entries.move_to_end(entry.key)
        self._sizes[entry.key] = entry.size

    @property
    def used(self) -> int:
        """Weight bytes of the resident models (as measured when each was added: no file I/O)."""
        return sum(self._sizes[key] for key in self._entries)

    def estimate(self, spec: dict[str, Any]) -> int:
        """The bytes ``spec`` will take once loaded: its last measured size, else its files' size."""
        return self._sizes.get(model_key(spec), 0) or file_bytes(spec)

    def make_room(self, spec: dict[str, Any] | None = None) -> list[Resident]:
        """Close least recently used models until one more fits: fewer than ``limit`` models, and
        (with a budget) the estimate of ``spec`` within what is left. Returns the ones closed."""
        need = self.estimate(spec) if spec is not None and self.budget else 0
        evicted = []
        while self._entries and (len(self._entries) >= self.limit or (self.budget and self.used + need > self.budget)):
            evicted.append(self.evict_oldest())
        return evicted

    def trim(self, keep: str) -> list[Resident]:
        """Over the budget (a model larger than its estimate): close least recently used models
        other than ``keep`` until within it, or ``keep`` is alone. Returns the ones closed."""
        evicted = []
        while self.budget and self.used > self.budget:
            entry = self.evict_oldest_except(keep)
            if entry is None:
                break
            evicted.append(entry)
        return evicted

    def evict_oldest_except(self, keep: str) -> Resident | None:
        """Close the least recently used model other than ``keep`` and return it (None when
        ``keep`` is alone)."""
        oldest = next((key for key in self._entries if key != keep), None)
        if oldest is None:
            return None
        entry = self._entries.pop(oldest)
        entry.context.close()
        return entry

    def evict_oldest(self) -> Resident:
        """Close the least recently used model (there must be one) and return it."""
        _, entry = self._entries.popitem(last=False)
        entry.context.close()
        return entry

    def clear(self) -> None:
        while self._entries:
            self.evict_oldest()

    def entries(self) -> list[Resident]:
        """Least recently used first."""
        return list(self._entries.values())
