"""The discovery client: Cloud Map's `DiscoverInstances` behind a short cache, and instance choice.

Standard library only, importable on Python 3.9: this runs inside functions, on whatever local
interpreter their runtime maps to.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ._types import (
    IPV4,
    IPV6,
    PORT,
    DiscoveryError,
    Endpoint,
    InstanceUnreachable,
    NamespaceNotFound,
    NoHealthyInstance,
    Response,
    ServiceNotFound,
)

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_SERVICEDISCOVERY"
ZONE_VARIABLE = "AVAILABILITY_ZONE"

_TARGET_PREFIX = "Route53AutoNaming_v20170314."
_CONTENT_TYPE = "application/x-amz-json-1.1"
_FAIL_OPEN = "HEALTHY_OR_ELSE_ALL"
# Methods HTTP defines as idempotent: sending one twice does no more than sending it once.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

_Key = tuple[str, str, tuple[tuple[str, str], ...], str]


class _Unreachable(Exception):
    """The discovery endpoint did not answer (a cached answer may still serve)."""


@dataclass(frozen=True)
class _Answer:
    endpoints: tuple[Endpoint, ...]
    revision: int | None
    returned: int
    """How many instances Cloud Map returned, with or without an address."""
    checked: float
    """When the answer was last known current (by a full fetch or an unchanged revision)."""
    fetched: float


class DiscoveryClient:
    """Resolves services through one Cloud Map endpoint; safe to share between threads.

    An answer is used for `cache_seconds` with no call at all; after that one cheap
    `DiscoverInstancesRevision` call confirms it, and only a changed revision fetches the
    instances again. Cloud Map's revision moves on registration and deregistration, not on health
    changes, so an answer is fetched anew at least every `refresh_seconds` whatever the revision.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        zone: str | None = None,
        cache_seconds: float = 5.0,
        refresh_seconds: float = 30.0,
        failure_seconds: float = 10.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """`endpoint` is the Cloud Map API's base URL (e.g. `http://127.0.0.1:3001`); `zone` the
        caller's availability zone, whose instances are preferred; `failure_seconds` how long
        `mark_failed` keeps an instance aside; `timeout` applies to each call to Cloud Map."""
        if not endpoint.startswith(("http://", "https://")):
            raise DiscoveryError(f"the discovery endpoint must be an http(s) URL, not {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self.zone = zone or None
        self.cache_seconds = cache_seconds
        self.refresh_seconds = refresh_seconds
        self.failure_seconds = failure_seconds
        self.timeout = timeout
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._answers: dict[_Key, _Answer] = {}
        self._failed: dict[Endpoint, float] = {}
        # No proxy: the control URL and the instances are local addresses a proxy cannot reach.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str], *, endpoint: str | None = None, **options: Any
    ) -> DiscoveryClient:
        """A client for `endpoint`, else `AWS_ENDPOINT_URL_SERVICEDISCOVERY`, in the zone
        `AVAILABILITY_ZONE` names; `options` go to the constructor."""
        url = endpoint or environ.get(ENDPOINT_VARIABLE)
        if not url:
            raise DiscoveryError(
                f"no discovery endpoint: set {ENDPOINT_VARIABLE} or pass endpoint="
            )
        options.setdefault("zone", environ.get(ZONE_VARIABLE))
        return cls(url, **options)

    # -- resolution -----------------------------------------------------------------------------
    def resolve(
        self, service: str, namespace: str, *, query: Mapping[str, str] | None = None
    ) -> Endpoint:
        """One instance to call: a random healthy one, from the caller's zone when it has one,
        skipping instances `mark_failed` set aside (unless every instance is set aside)."""
        key = _key(service, namespace, query)
        answer = self._answer(key)
        chosen = self._choose(answer.endpoints, ())
        if chosen is None:
            raise _no_instance(service, namespace, answer.returned)
        return chosen

    def instances(
        self, service: str, namespace: str, *, query: Mapping[str, str] | None = None
    ) -> list[Endpoint]:
        """Every discovered instance with an address, those of the caller's zone first."""
        answer = self._answer(_key(service, namespace, query))
        local = [e for e in answer.endpoints if self.zone and e.zone == self.zone]
        return local + [e for e in answer.endpoints if e not in local]

    def url(
        self,
        service: str,
        namespace: str,
        path: str = "/",
        *,
        query: Mapping[str, str] | None = None,
    ) -> str:
        """`http://host:port/path` for one resolved instance."""
        return self.resolve(service, namespace, query=query).url + _rooted(path)

    def mark_failed(self, endpoint: Endpoint, seconds: float | None = None) -> None:
        """Set an instance aside for `seconds` (default `failure_seconds`), and re-check with
        Cloud Map on the next resolution of any service it belongs to (it may have been
        replaced)."""
        now = self._clock()
        until = now + (self.failure_seconds if seconds is None else seconds)
        with self._lock:
            self._failed = {e: t for e, t in self._failed.items() if t > now}
            self._failed[endpoint] = until
            for key, answer in list(self._answers.items()):
                if endpoint in answer.endpoints:
                    self._answers[key] = _replace(answer, checked=float("-inf"))

    def forget(self) -> None:
        """Drop every cached answer and failure mark."""
        with self._lock:
            self._answers.clear()
            self._failed.clear()

    # -- calling an instance -------------------------------------------------------------------
    def request(
        self,
        method: str,
        service: str,
        namespace: str,
        path: str = "/",
        *,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        query: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one HTTP request to an instance of the service and return its response, whatever
        the status.

        When the connection fails, the instance is marked failed and the request goes once to
        another instance if that is safe: always for an idempotent method, and for any method
        when the connection was refused (nothing was sent). `InstanceUnreachable` otherwise. A
        timeout waiting for the answer is not retried: the standard timeout error is raised.
        """
        method = method.upper()
        data = body.encode() if isinstance(body, str) else body
        sent = dict(headers or {})
        if data is not None and not any(h.lower() == "content-type" for h in sent):
            # urllib would otherwise label every body as a form.
            sent["Content-Type"] = (
                "text/plain; charset=utf-8" if isinstance(body, str) else "application/octet-stream"
            )
        key = _key(service, namespace, query)
        first = self.resolve(service, namespace, query=query)
        tried = [first]
        while True:
            target = tried[-1]
            request = urllib.request.Request(
                target.url + _rooted(path), data=data, headers=sent, method=method
            )
            try:
                return self._send(request, timeout)
            except _ConnectFailed as failure:
                self.mark_failed(target)
                cause = failure.__cause__
                may_retry = method in _IDEMPOTENT or failure.refused
                second = self._choose(self._answer(key).endpoints, tried) if may_retry else None
                if len(tried) > 1 or second is None:
                    names = ", ".join(f"{e.instance_id} ({e.url})" for e in tried)
                    raise InstanceUnreachable(
                        f"{method} {path} to service {service!r} in namespace {namespace!r}: "
                        f"cannot connect to {names}: {cause}",
                        service=service,
                        namespace=namespace,
                    ) from cause
                tried.append(second)

    def _send(self, request: urllib.request.Request, timeout: float) -> Response:
        try:
            with self._opener.open(request, timeout=timeout) as answer:
                return Response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as err:
            try:
                return Response(err.code, err.headers, err.read())
            finally:
                err.close()
        except urllib.error.URLError as err:
            # urllib wraps the errors of connecting and sending; anything else it cannot route.
            if isinstance(err.reason, OSError):
                raise _ConnectFailed(isinstance(err.reason, ConnectionRefusedError)) from err.reason
            raise
        except ConnectionError as err:
            # Reset or closed before the status line (http.client.RemoteDisconnected included).
            raise _ConnectFailed(False) from err

    # -- the cache ------------------------------------------------------------------------------
    def _answer(self, key: _Key) -> _Answer:
        namespace, service = key[0], key[1]
        now = self._clock()
        with self._lock:
            cached = self._answers.get(key)
        if cached is not None and now - cached.checked < self.cache_seconds:
            return cached
        try:
            if cached is not None and now - cached.fetched < self.refresh_seconds:
                revision = self._revision(namespace, service)
                if revision is not None and revision == cached.revision:
                    return self._store(key, _replace(cached, checked=now))
            return self._store(key, self._fetch(key, now))
        except _Unreachable as err:
            if cached is not None:
                # Cloud Map being briefly away should not fail calls it already answered; try
                # again once the cache time has passed.
                return self._store(key, _replace(cached, checked=now))
            raise DiscoveryError(
                f"cannot resolve service {service!r} in namespace {namespace!r}: {err}",
                service=service,
                namespace=namespace,
            ) from err.__cause__
        except DiscoveryError:
            with self._lock:
                self._answers.pop(key, None)
            raise

    def _store(self, key: _Key, answer: _Answer) -> _Answer:
        with self._lock:
            self._answers[key] = answer
        return answer

    def _fetch(self, key: _Key, now: float) -> _Answer:
        namespace, service, query, health = key
        document: dict[str, Any] = {
            "NamespaceName": namespace,
            "ServiceName": service,
            "HealthStatus": health,
        }
        if query:
            document["QueryParameters"] = dict(query)
        reply = self._call("DiscoverInstances", document, service, namespace)
        found = reply.get("Instances") or []
        endpoints = tuple(e for e in (_endpoint(doc) for doc in found) if e is not None)
        revision = reply.get("InstancesRevision")
        return _Answer(
            endpoints=endpoints,
            revision=revision if isinstance(revision, int) else None,
            returned=len(found),
            checked=now,
            fetched=now,
        )

    def _revision(self, namespace: str, service: str) -> int | None:
        document = {"NamespaceName": namespace, "ServiceName": service}
        reply = self._call("DiscoverInstancesRevision", document, service, namespace)
        revision = reply.get("InstancesRevision")
        return revision if isinstance(revision, int) else None

    def _call(
        self, operation: str, document: Mapping[str, Any], service: str, namespace: str
    ) -> dict[str, Any]:
        request = urllib.request.Request(
            self.endpoint + "/",
            data=json.dumps(document).encode(),
            headers={"X-Amz-Target": _TARGET_PREFIX + operation, "Content-Type": _CONTENT_TYPE},
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as err:
            try:
                raw = err.read()
            finally:
                err.close()
            raise _api_error(err.code, raw, operation, service, namespace) from None
        except (OSError, http.client.HTTPException) as err:
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
            raise _Unreachable(f"Cloud Map at {self.endpoint} did not answer: {reason}") from err
        try:
            reply = json.loads(raw)
        except ValueError as err:
            raise DiscoveryError(
                f"{operation} at {self.endpoint} answered with something that is not JSON",
                service=service,
                namespace=namespace,
            ) from err
        if not isinstance(reply, dict):
            raise DiscoveryError(
                f"{operation} at {self.endpoint} answered with JSON that is not an object",
                service=service,
                namespace=namespace,
            )
        return reply

    # -- choice ---------------------------------------------------------------------------------
    def _choose(
        self, endpoints: Iterable[Endpoint], exclude: Iterable[Endpoint]
    ) -> Endpoint | None:
        now = self._clock()
        skip = set(exclude)
        usable = [e for e in endpoints if e not in skip]
        with self._lock:
            live = [e for e in usable if self._failed.get(e, now) <= now]
            # Every instance set aside: a failure mark is a guess, so try them rather than none.
            pool = live or usable
            local = [e for e in pool if self.zone and e.zone == self.zone]
            return self._rng.choice(local or pool) if pool else None


class _ConnectFailed(Exception):
    def __init__(self, refused: bool) -> None:
        super().__init__("connection failed")
        self.refused = refused


def _key(service: str, namespace: str, query: Mapping[str, str] | None) -> _Key:
    return (namespace, service, tuple(sorted((query or {}).items())), _FAIL_OPEN)


def _rooted(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _replace(answer: _Answer, *, checked: float) -> _Answer:
    return _Answer(answer.endpoints, answer.revision, answer.returned, checked, answer.fetched)


def _endpoint(doc: Any) -> Endpoint | None:
    if not isinstance(doc, dict):
        return None
    raw = doc.get("Attributes")
    attributes = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    host = attributes.get(IPV4) or attributes.get(IPV6)
    port = attributes.get(PORT, "")
    if not host or not port.isdigit():
        return None
    # Read-only: the endpoint sits in a cache shared by every caller.
    return Endpoint(host, int(port), str(doc.get("InstanceId", "")), MappingProxyType(attributes))


def _no_instance(service: str, namespace: str, returned: int) -> NoHealthyInstance:
    if returned:
        why = f"none of its {returned} instance(s) has an address ({IPV4} or {IPV6}, and {PORT})"
    else:
        why = "it has no registered instance"
    return NoHealthyInstance(
        f"no instance to call for service {service!r} in namespace {namespace!r}: {why}",
        service=service,
        namespace=namespace,
    )


def _api_error(
    status: int, raw: bytes, operation: str, service: str, namespace: str
) -> DiscoveryError:
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    # Some AWS JSON services qualify the type (`prefix#ServiceNotFound`); take the last part.
    code = str(doc.get("__type", "")).rpartition("#")[2] or None
    detail = doc.get("Message") or doc.get("message") or ""
    if code == "ServiceNotFound":
        return ServiceNotFound(
            f"service {service!r} not found in namespace {namespace!r}",
            service=service,
            namespace=namespace,
            code=code,
        )
    if code == "NamespaceNotFound":
        return NamespaceNotFound(
            f"namespace {namespace!r} not found (looking up service {service!r})",
            service=service,
            namespace=namespace,
            code=code,
        )
    shown = f"{code}: {detail}" if code else f"HTTP {status}"
    return DiscoveryError(
        f"{operation} for service {service!r} in namespace {namespace!r} failed: {shown}",
        service=service,
        namespace=namespace,
        code=code,
    )
