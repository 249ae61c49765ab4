"""The signing keys of JWT issuers, fetched over HTTP and cached.

Where the keys are: the authorizer's `jwks_uri` when given, else the `jwks_uri` of the issuer's
OpenID configuration (`<issuer>/.well-known/openid-configuration`), else
`<issuer>/.well-known/jwks.json` (Cognito's layout, for issuers without discovery).

A key set is kept for `max_age_s`. A token whose `kid` is not in it triggers a refetch (keys
rotate), but at most once per `refresh_floor_s`, so a stream of forged `kid`s cannot turn the
gateway into a load generator against the issuer. A fetch that fails is not retried for
`failure_backoff_s`, and every fetch is bounded by `timeout_s` in total: an issuer that is down or
slow costs the requests that need it a 401, never a hang, and never the node.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
import jwt

from fogbank._errors import FogbankError
from fogbank.gateway._auth_common import Clock

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_REFRESH_FLOOR_S = 30.0
DEFAULT_MAX_AGE_S = 3600.0
DEFAULT_FAILURE_BACKOFF_S = 5.0


class KeysUnavailable(FogbankError):
    """The issuer's key set could not be fetched (down, slow, not a JWK set)."""


class UnknownKey(FogbankError):
    """The issuer's key set has no key with the token's `kid`."""


@dataclass(slots=True)
class _KeySet:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float | None = None
    """When the keys were last fetched successfully (None: never)."""
    tried_at: float | None = None
    failed: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JwksClient:
    """Fetches and caches key sets, one per issuer (or explicit JWKS URI)."""

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        refresh_floor_s: float = DEFAULT_REFRESH_FLOOR_S,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        failure_backoff_s: float = DEFAULT_FAILURE_BACKOFF_S,
        clock: Clock = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.refresh_floor_s = refresh_floor_s
        self.max_age_s = max_age_s
        self.failure_backoff_s = failure_backoff_s
        self.clock = clock
        # Issuers are often on the internet: no proxy or .netrc surprises from the environment.
        self._client = httpx.AsyncClient(
            transport=transport, trust_env=False, follow_redirects=True, timeout=timeout_s
        )
        self._sets: dict[str, _KeySet] = {}

    async def close(self) -> None:
        await self._client.aclose()

    async def key(self, issuer: str, jwks_uri: str | None, kid: str) -> jwt.PyJWK:
        """The key `kid` of the issuer; raises `KeysUnavailable` or `UnknownKey`."""
        source = jwks_uri or issuer
        entry = self._sets.setdefault(source, _KeySet())
        found = entry.keys.get(kid)
        if found is not None and self._fresh(entry):
            return found
        async with entry.lock:
            # Another request may have fetched while this one waited for the lock.
            found = entry.keys.get(kid)
            if found is not None and self._fresh(entry):
                return found
            if self._may_fetch(entry):
                await self._refresh(entry, issuer, jwks_uri)
            found = entry.keys.get(kid)
        if found is not None:
            return found
        if entry.fetched_at is None:
            raise KeysUnavailable(f"the keys of {source} could not be fetched")
        raise UnknownKey(f"no key {kid!r} in the key set of {source}")

    def _fresh(self, entry: _KeySet) -> bool:
        return entry.fetched_at is not None and self.clock() - entry.fetched_at < self.max_age_s

    def _may_fetch(self, entry: _KeySet) -> bool:
        if entry.tried_at is None:
            return True
        wait = self.failure_backoff_s if entry.failed else self.refresh_floor_s
        return self.clock() - entry.tried_at >= wait

    async def _refresh(self, entry: _KeySet, issuer: str, jwks_uri: str | None) -> None:
        entry.tried_at = self.clock()
        try:
            async with asyncio.timeout(self.timeout_s):
                keys = await self._fetch(issuer, jwks_uri)
        except (TimeoutError, httpx.HTTPError, ValueError, jwt.PyJWTError):
            # Keys fetched earlier stay usable; only the attempt is remembered.
            entry.failed = True
            return
        entry.keys, entry.fetched_at, entry.failed = keys, self.clock(), False

    async def _fetch(self, issuer: str, jwks_uri: str | None) -> dict[str, jwt.PyJWK]:
        uri = jwks_uri or await self._discover(issuer)
        response = await self._client.get(uri)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("a JWK set must be a JSON object")
        key_set = jwt.PyJWKSet.from_dict(document)
        return {key.key_id: key for key in key_set.keys if key.key_id}

    async def _discover(self, issuer: str) -> str:
        base = issuer.rstrip("/")
        fallback = f"{base}/.well-known/jwks.json"
        # An issuer that is down fails here; one without discovery answers 404 and gets the
        # fallback.
        response = await self._client.get(f"{base}/.well-known/openid-configuration")
        if response.status_code != 200:
            return fallback
        try:
            document = response.json()
        except ValueError:
            return fallback
        uri = document.get("jwks_uri") if isinstance(document, dict) else None
        return uri if isinstance(uri, str) and uri else fallback
