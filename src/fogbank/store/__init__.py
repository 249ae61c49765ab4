"""State that outlives a request: the async event queue (more stores join as they are written)."""

from fogbank.store._protocols import Clock, QuotaCounter, RateLimiter, ResponseCache, Stores
from fogbank.store._queue import EventQueue, MemoryEventQueue, QueuedEvent, SqliteEventQueue

__all__ = [
    "Clock",
    "EventQueue",
    "MemoryEventQueue",
    "QueuedEvent",
    "QuotaCounter",
    "RateLimiter",
    "ResponseCache",
    "SqliteEventQueue",
    "Stores",
]
