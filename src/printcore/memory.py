"""In-memory fakes of the shared ports: clocks, the outbox, a link signer and a password
hasher (for unit tests, examples and trying printcore out). The print-request flow's
database and file store are in :mod:`printcore.requests.memory`, the queue's in
:mod:`printcore.queue.memory`.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from printcore.errors import ConcurrentChangeError, NotFoundError, TokenTamperedError
from printcore.outbox import OutboxMessage
from printcore.ports import Notice

__all__ = [
    "FixedClock",
    "MemoryOutbox",
    "MemoryOutboxStore",
    "MemorySigner",
    "PlainHasher",
    "SystemClock",
]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@attrs.define
class FixedClock:
    """A clock that moves only when told: ``clock.advance(minutes=10)``."""

    current: datetime = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current = self.current + timedelta(**delta)


@attrs.define
class MemoryOutboxStore:
    """Committed outbox rows (shared by the print request and queue fakes)."""

    rows: dict[int, OutboxMessage] = attrs.Factory(dict)
    next_id: int = 1
    lock: threading.RLock = attrs.field(factory=threading.RLock, repr=False)

    def messages(self, channel: str | None = None) -> list[OutboxMessage]:
        """Committed rows, oldest first (copies)."""
        with self.lock:
            rows = [copy.deepcopy(m) for _, m in sorted(self.rows.items())]
        return [m for m in rows if channel is None or m.channel == channel]

    @property
    def sent(self) -> list[Notice]:
        """The email notices of committed changes, oldest first."""
        return [m.notice() for m in self.messages("email")]


class MemoryOutbox:
    """``printcore.outbox.OutboxRepository`` over a :class:`MemoryOutboxStore`: writes are
    kept in the transaction until :meth:`publish`; a lease taken by two transactions at
    once lets only the first commit."""

    def __init__(self, store: MemoryOutboxStore) -> None:
        self.store = store
        self.pending: dict[int, tuple[OutboxMessage, int | None]] = {}

    def reset(self) -> None:
        self.pending = {}

    def publish(self) -> None:
        """Called by the unit of work's commit, under no other lock."""
        with self.store.lock:
            for message_id, (_m, base) in self.pending.items():
                stored = self.store.rows.get(message_id)
                if base is not None and (stored is None or stored.attempts != base):
                    raise ConcurrentChangeError(message=f"Message {message_id} changed.")
            for message_id, (message, _) in self.pending.items():
                self.store.rows[message_id] = copy.deepcopy(message)
        self.reset()

    def _view(self) -> dict[int, OutboxMessage]:
        with self.store.lock:
            view = dict(self.store.rows)
        view.update({k: m for k, (m, _) in self.pending.items()})
        return view

    def add(self, message: OutboxMessage) -> int:
        with self.store.lock:
            message.id = self.store.next_id
            self.store.next_id += 1
        if message.next_attempt_at is None:
            message.next_attempt_at = message.created_at
        self.pending[message.id] = (copy.deepcopy(message), None)
        return message.id

    def add_many(self, messages: Sequence[OutboxMessage]) -> list[int]:
        return [self.add(m) for m in messages]

    def get(self, message_id: int) -> OutboxMessage:
        found = self._view().get(message_id)
        if found is None:
            raise NotFoundError(f"There is no message {message_id}.")
        return copy.deepcopy(found)

    def lease(self, message_id: int, now: datetime, until: datetime) -> OutboxMessage | None:
        found = self._view().get(message_id)
        if found is None or found.status != "pending":
            return None
        if found.next_attempt_at is not None and found.next_attempt_at > now:
            return None
        if found.lease_until is not None and found.lease_until > now:
            return None
        message = copy.deepcopy(found)
        base = self.pending.get(message_id, (None, message.attempts))[1]
        message.lease_until = until
        message.attempts += 1
        self.pending[message_id] = (copy.deepcopy(message), base)
        return message

    def finish(self, message: OutboxMessage) -> None:
        assert message.id is not None
        self.pending[message.id] = (copy.deepcopy(message), None)

    def due(self, now: datetime, limit: int, channels: Sequence[str],
            relayed_before: datetime | None = None) -> list[int]:
        out = []
        rows = sorted(self._view().items(),
                      key=lambda item: (item[1].next_attempt_at or item[1].created_at, item[0]))
        for message_id, m in rows:
            if m.status != "pending" or m.channel not in channels:
                continue
            if m.next_attempt_at is not None and m.next_attempt_at > now:
                continue
            if m.lease_until is not None and m.lease_until > now:
                continue
            if relayed_before is not None and m.relayed_at is not None \
                    and m.relayed_at > relayed_before:
                continue
            out.append(message_id)
        return out[:limit]

    def mark_relayed(self, message_ids: Sequence[int], at: datetime | None) -> None:
        for message_id in message_ids:
            message = self.get(message_id)
            message.relayed_at = at
            self.pending[message_id] = (message, None)

    def list(self, status: str | None = None, subject: str | None = None,
             subject_id: int | None = None, limit: int = 100) -> list[OutboxMessage]:
        rows = [copy.deepcopy(m) for _, m in sorted(self._view().items(), reverse=True)]
        rows = [m for m in rows if (status is None or m.status == status)
                and (subject is None or m.subject == subject)
                and (subject_id is None or m.subject_id == subject_id)]
        return rows[:limit]

    def failed_subjects(self, subject: str) -> dict[int, int]:
        out: dict[int, int] = {}
        for m in self._view().values():
            if m.status == "failed" and m.subject == subject:
                out[m.subject_id] = out.get(m.subject_id, 0) + 1
        return out


class MemorySigner:
    """Not cryptographic: a stand-in that still refuses any edited token."""

    def __init__(self, secret: str = "test") -> None:
        self._secret = secret

    def _mac(self, purpose: str, body: str) -> str:
        return hashlib.sha256(f"{self._secret}|{purpose}|{body}".encode()).hexdigest()[:16]

    def dumps(self, purpose: str, payload: Mapping[str, Any]) -> str:
        import json

        body = json.dumps(dict(payload), sort_keys=True, separators=(",", ":"))
        return f"{body}.{self._mac(purpose, body)}"

    def loads(self, purpose: str, token: str) -> dict[str, Any]:
        import json

        body, _, mac = token.rpartition(".")
        if not body or mac != self._mac(purpose, body):
            raise TokenTamperedError()
        data: dict[str, Any] = json.loads(body)
        return data


class PlainHasher:
    """Not for production: compares sha256 digests."""

    def hash(self, password: str) -> str:
        return hashlib.sha256(password.encode()).hexdigest()

    def verify(self, hashed: str, password: str) -> bool:
        return hashed == self.hash(password)
