"""State that outlives a request: the async event queue, rate limits, quotas and usage."""

from fogbank.store._memory import MemoryLimiter, MemoryQuotas
from fogbank.store._open import check_stores, close_stores, open_stores
from fogbank.store._protocols import Clock, QuotaCounter, RateLimiter, ResponseCache, Stores
from fogbank.store._queue import EventQueue, MemoryEventQueue, QueuedEvent, SqliteEventQueue
from fogbank.store._redis import RedisLimiter, RedisQuotas

__all__ = [
    "Clock",
    "EventQueue",
    "MemoryEventQueue",
    "MemoryLimiter",
    "MemoryQuotas",
    "QueuedEvent",
    "QuotaCounter",
    "RateLimiter",
    "RedisLimiter",
    "RedisQuotas",
    "ResponseCache",
    "SqliteEventQueue",
    "Stores",
    "check_stores",
    "close_stores",
    "open_stores",
]
