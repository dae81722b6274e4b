"""The models a worker keeps loaded: up to ``--max-loaded-models`` contexts, least recently
used first out, so jobs that alternate between a few checkpoints load each one once."""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass
from typing import Any


def model_key(spec: dict[str, Any]) -> str:
    """What makes two loads the same: the file and every context option."""
    return json.dumps([spec["path"], spec.get("options") or {}], sort_keys=True)


@dataclass
class Resident:
    """One loaded model: its engine context and what it took."""

    key: str
    spec: dict[str, Any]          # {"name", "path", "options"} as the supervisor sent it
    context: Any                  # sdrest.engine.Context
    seconds: float                # how long the load took
    memory: dict[str, int] | None  # the library's count of weight bytes (ram_bytes, vram_bytes)

    def describe(self) -> dict[str, Any]:
        return {"name": self.spec["name"], "path": self.spec.get("path"), "options": self.spec.get("options") or {},
                "load_seconds": round(self.seconds, 3), "memory": self.memory}


class ResidentModels:
    """An LRU of loaded contexts; :meth:`get` marks an entry as just used."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._entries: collections.OrderedDict[str, Resident] = collections.OrderedDict()

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

    def make_room(self) -> list[Resident]:
        """Close least recently used models until one more fits; returns the ones closed."""
        evicted = []
        while len(self._entries) >= self.limit:
            _, entry = self._entries.popitem(last=False)
            entry.context.close()
            evicted.append(entry)
        return evicted

    def clear(self) -> None:
        while self._entries:
            _, entry = self._entries.popitem(last=False)
            entry.context.close()

    def entries(self) -> list[Resident]:
        """Least recently used first."""
        return list(self._entries.values())
