"""The embedded response cache: bytes by key in this process, with a TTL and a size cap."""

from __future__ import annotations

import time
from collections import OrderedDict

from fogbank.store._protocols import Clock

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""What one node keeps before evicting: a fraction of AWS's smallest cache cluster (0.5 GB)."""


class MemoryCache:
    """A `ResponseCache` in one node's memory (the embedded store).

    Entries expire by the injected clock, so tests move time instead of sleeping. The total of
    key and value sizes is capped at `max_bytes`: past it, the least recently used entries go
    first, as a cache cluster of fixed capacity evicts. Every method finishes without awaiting,
    so each operation is atomic on the event loop.
    """

    def __init__(self, clock: Clock = time.time, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._clock = clock
        self._max_bytes = max_bytes
        # Least recently used first; the value is (expiry in clock seconds, data).
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """The bytes held now (keys and values), expired entries not yet dropped included."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s` seconds; a TTL of 0 or less removes the key instead."""
        self._drop(key)
        size = len(key) + len(value)
        if ttl_s <= 0 or size > self._max_bytes:
            return
        self._entries[key] = (self._clock() + ttl_s, value)
        self._bytes += size
        while self._bytes > self._max_bytes:
            oldest, (_, data) = self._entries.popitem(last=False)
            self._bytes -= len(oldest) + len(data)

    async def flush(self, prefix: str) -> int:
        """Drop every entry under `prefix`; the count leaves out entries already expired."""
        now = self._clock()
        doomed = [key for key in self._entries if key.startswith(prefix)]
        live = 0
        for key in doomed:
            if self._entries[key][0] > now:
                live += 1
            self._drop(key)
        return live

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(key) + len(entry[1])
