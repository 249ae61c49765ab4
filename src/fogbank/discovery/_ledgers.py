"""The registry's side books: the operation log, and key-value labels (tags, service attributes)."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable, Mapping

from fogbank.discovery._records import CloudMapError, Operation, OperationStatus
from fogbank.discovery._registry_store import Change, operation_change
from fogbank.discovery._rules import invalid

_ALNUM = string.ascii_lowercase + string.digits


def token(length: int) -> str:
    """Random lower-case letters and digits, as Cloud Map's ids use."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


class OperationLog:
    """Finished operations in creation order; the oldest are forgotten past `limit`.

    Changes are made in two steps so that the store is written first: `changes` (the records to
    write, the forgotten one's removal included) and then `add`.
    """

    def __init__(self, clock: Callable[[], float], limit: int = 10_000) -> None:
        self._clock = clock
        self._limit = limit
        self._operations: dict[str, Operation] = {}

    def load(self, operations: Iterable[Operation]) -> None:
        for operation in operations:
            self._operations[operation.id] = operation

    def make(self, kind: str, targets: Mapping[str, str]) -> Operation:
        """A new operation, already SUCCESS: fogbank's changes take effect at once."""
        now = self._clock()
        return Operation(
            id=f"{token(32)}-{token(8)}",
            type=kind,
            status=OperationStatus.SUCCESS,
            targets=dict(targets),
            created=now,
            updated=now,
        )

    def changes(self, operation: Operation) -> list[Change]:
        changes = [operation_change(operation)]
        if len(self._operations) >= self._limit:
            changes.append(("operation", next(iter(self._operations)), None))
        return changes

    def add(self, operation: Operation) -> None:
        if len(self._operations) >= self._limit:
            del self._operations[next(iter(self._operations))]
        self._operations[operation.id] = operation

    def get(self, operation_id: str) -> Operation:
        operation = self._operations.get(operation_id)
        if operation is None:
            raise CloudMapError("OperationNotFound", f"Operation {operation_id} not found.")
        return operation

    def all(self) -> list[Operation]:
        return list(self._operations.values())

    def find(self, kind: str, target: str, resource_id: str) -> Operation | None:
        """The first `kind` operation on a resource (`CREATE_NAMESPACE` of a namespace)."""
        for operation in self._operations.values():
            if operation.type == kind and operation.targets.get(target) == resource_id:
                return operation
        return None


class LabelBook:
    """Key-value labels per resource (tags by ARN, service attributes by service id), with
    Cloud Map's limits on their number and length."""

    def __init__(
        self, kind: str, limit: int, too_many: str, key_length: int, value_length: int
    ) -> None:
        self.kind = kind
        self._limit = limit
        self._too_many = too_many
        self._key_length = key_length
        self._value_length = value_length
        self._labels: dict[str, dict[str, str]] = {}

    def load(self, labels: Mapping[str, Mapping[str, str]]) -> None:
        for owner, values in labels.items():
            self._labels[owner] = dict(values)

    def get(self, owner: str) -> dict[str, str]:
        return dict(self._labels.get(owner, {}))

    def merged(self, owner: str, labels: Mapping[str, str]) -> dict[str, str]:
        """`owner`'s labels with `labels` added or replaced (not stored: see `change`/`put`)."""
        for key, value in labels.items():
            if not isinstance(key, str) or not 1 <= len(key) <= self._key_length:
                raise invalid(f"A key must be 1-{self._key_length} characters: {key!r}.")
            if not isinstance(value, str) or len(value) > self._value_length:
                raise invalid(f"The value of {key} must be at most {self._value_length} long.")
        merged = {**self._labels.get(owner, {}), **labels}
        if len(merged) > self._limit:
            raise CloudMapError(
                self._too_many,
                f"At most {self._limit} {self.kind.replace('_', ' ')} per resource.",
                fields={"ResourceName": owner} if self._too_many == "TooManyTagsException" else {},
            )
        return merged

    def without(self, owner: str, keys: Iterable[str]) -> dict[str, str]:
        drop = set(keys)
        return {k: v for k, v in self._labels.get(owner, {}).items() if k not in drop}

    def change(self, owner: str, labels: Mapping[str, str]) -> Change:
        return (self.kind, owner, dict(labels) if labels else None)

    def put(self, owner: str, labels: Mapping[str, str]) -> None:
        if labels:
            self._labels[owner] = dict(labels)
        else:
            self._labels.pop(owner, None)
