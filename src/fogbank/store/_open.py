"""Choose a node's stores at start-up: embedded (memory) or cluster (Redis), from its config.

`redis` is an optional dependency (`fogbank[redis]`); it is imported only when a node is
configured with a Redis URL, so the embedded store needs nothing beyond fogbank itself.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fogbank._errors import ConfigError
from fogbank.config import NodeConfig
from fogbank.store._cache_memory import MemoryCache
from fogbank.store._cache_redis import RedisCache
from fogbank.store._memory import MemoryLimiter, MemoryQuotas
from fogbank.store._protocols import Clock, Stores
from fogbank.store._redis import RedisLimiter, RedisQuotas

if TYPE_CHECKING:
    from redis.asyncio import Redis


def connect_redis(url: str) -> Redis:
    """A `redis.asyncio` client for `url`, or a `ConfigError` that says what to install."""
    try:
        from redis.asyncio import Redis
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"--redis-url {url} needs the redis client library: install fogbank[redis]"
            " (pip install 'fogbank[redis]')"
        ) from exc
    try:
        # Bytes in, bytes out: cached responses are bytes, and counters are decoded here.
        client: Redis = Redis.from_url(url, decode_responses=False)
    except ValueError as exc:
        raise ConfigError(f"invalid --redis-url {url}: {exc}") from exc
    return client


def open_stores(config: NodeConfig, clock: Clock = time.time) -> Stores:
    """The stores a node uses: memory when `config.redis_url` is None, else Redis.

    Nothing is contacted here; `check_stores` does that once the event loop runs.
    """
    if config.redis_url is None:
        return Stores(
            limiter=MemoryLimiter(clock), quotas=MemoryQuotas(clock), cache=MemoryCache(clock)
        )
    client = connect_redis(config.redis_url)
    prefix = config.redis_prefix
    return Stores(
        limiter=RedisLimiter(client, prefix, clock),
        quotas=RedisQuotas(client, prefix, clock),
        cache=RedisCache(client, prefix, clock),
    )


def _client(stores: Stores) -> Redis | None:
    limiter = stores.limiter
    return limiter.client if isinstance(limiter, RedisLimiter) else None


async def check_stores(stores: Stores, url: str | None = None) -> None:
    """Reach the cluster store once at start-up, so a wrong URL is one clear line, not a 500
    on every request."""
    client = _client(stores)
    if client is None:
        return
    from redis.exceptions import RedisError

    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        raise ConfigError(f"cannot reach Redis at {url or 'the configured URL'}: {exc}") from exc


async def close_stores(stores: Stores) -> None:
    """Release what `open_stores` opened (the Redis connection pool; memory needs nothing)."""
    client = _client(stores)
    if client is not None:
        await client.aclose()
