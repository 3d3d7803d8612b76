"""Heartbeats: the long-running processes say "still here" every ~15 s, and the readiness
check (:mod:`adapters.health`) and ``/metrics`` read how old the last word is.

Where each beat goes:

* ``printcore worker`` → Redis, key ``printcore:heartbeat:worker`` with a TTL
  (:class:`RedisHeartbeats`). The worker exists only with ``REDIS_URL``, and without Redis
  it could not work anyway, so Redis is its natural place; the TTL (1 h) keeps a dead
  worker's key from lingering forever.
* ``printcore bot`` and ``printcore sweep`` → the database, ``settings`` table, key
  ``heartbeat:bot`` / ``heartbeat:sweeper`` (:class:`DatabaseHeartbeats`). The bot runs
  without Redis (Redis is optional for a lab whose web process delivers the email), but
  never without the lab's database; and the web process that answers the readiness check
  reads that same database, so the beat is seen exactly where the queue's state is.

A beat is JSON: ``{"at": ISO UTC time, "host": hostname, "pid": int, ...}``; the sweeping
processes add ``"sweep"``, a :class:`SweepTimings` snapshot (the durations of their queue
sweeps, a cumulative histogram in seconds), which ``/metrics`` publishes as
``printcore_sweep_duration_seconds``. Ages are measured on the wall clock (UTC), since
beats come from other processes.

Several workers share one key: the newest beat wins, so the check means "at least one
worker is alive".
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
import structlog
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import insert

from adapters.sql.tables import settings

__all__ = [
    "BEAT_SECONDS", "REDIS_TTL_SECONDS", "SWEEP_BUCKETS", "Beat", "DatabaseHeartbeats",
    "HeartbeatStore", "HeartbeatThread", "RedisHeartbeats", "SweepTimings", "beat_forever",
]

_log = structlog.get_logger("printcore.heartbeat")

#: How often the processes beat (seconds).
BEAT_SECONDS = 15.0
#: How long a worker's Redis key lives without a new beat (seconds).
REDIS_TTL_SECONDS = 3600
REDIS_KEY = "printcore:heartbeat:{}"
DATABASE_KEY = "heartbeat:{}"
#: Upper bounds (seconds) of the sweep duration histogram's buckets (+Inf implied).
SWEEP_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                                    5.0, 10.0, 30.0)


@attrs.frozen
class Beat:
    """One heartbeat: ``component`` (``worker``, ``bot``, ``sweeper``), ``at`` (UTC),
    ``host`` and ``pid`` of the process, and ``data`` (whatever else it said)."""

    component: str
    at: datetime
    host: str
    pid: int
    data: dict[str, Any] = attrs.field(factory=dict)

    def age_seconds(self, now: datetime | None = None) -> float:
        """Seconds since the beat (0 for a beat from a clock ahead of ours)."""
        return max(0.0, ((now or datetime.now(UTC)) - self.at).total_seconds())

    def to_json(self) -> str:
        return json.dumps({**self.data, "at": self.at.isoformat(), "host": self.host,
                           "pid": self.pid})

    @classmethod
    def from_json(cls, component: str, text: str | bytes) -> Beat | None:
        """The beat stored as ``text``, or None when it is not a beat (garbled)."""
        try:
            raw = json.loads(text)
            at = datetime.fromisoformat(raw.pop("at"))
            host, pid = str(raw.pop("host")), int(raw.pop("pid"))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return cls(component, at.astimezone(UTC), host, pid, raw)


def _beat_now(component: str, data: dict[str, Any] | None) -> Beat:
    return Beat(component, datetime.now(UTC), socket.gethostname(), os.getpid(),
                dict(data or {}))


class HeartbeatStore(Protocol):
    def beat(self, component: str, data: dict[str, Any] | None = None) -> Beat: ...

    def last(self, component: str) -> Beat | None: ...


class RedisHeartbeats:
    """Beats as Redis keys ``printcore:heartbeat:<component>`` with a TTL
    (``ttl_seconds``). Methods raise ``redis.RedisError`` (or OSError) when Redis does not
    answer within ``timeout`` seconds."""

    def __init__(self, redis_url: str, ttl_seconds: int = REDIS_TTL_SECONDS,
                 timeout: float = 2.0) -> None:
        import redis

        self._client = redis.Redis.from_url(redis_url, socket_connect_timeout=timeout,
                                            socket_timeout=timeout)
        self._ttl = ttl_seconds

    def beat(self, component: str, data: dict[str, Any] | None = None) -> Beat:
        beat = _beat_now(component, data)
        self._client.set(REDIS_KEY.format(component), beat.to_json(), ex=self._ttl)
        return beat

    def last(self, component: str) -> Beat | None:
        value = self._client.get(REDIS_KEY.format(component))
        return None if value is None else Beat.from_json(component, value)

    def close(self) -> None:
        self._client.close()


class DatabaseHeartbeats:
    """Beats as rows ``heartbeat:<component>`` of the ``settings`` table, one short
    transaction each. Methods raise ``sqlalchemy.exc.SQLAlchemyError`` when the database
    fails."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def beat(self, component: str, data: dict[str, Any] | None = None) -> Beat:
        beat = _beat_now(component, data)
        key, value = DATABASE_KEY.format(component), beat.to_json()
        with self._engine.begin() as conn:
            changed = conn.execute(update(settings).where(settings.c.key == key)
                                   .values(value=value)).rowcount
        if not changed:
            try:
                with self._engine.begin() as conn:
                    conn.execute(insert(settings).values(key=key, value=value))
            except IntegrityError:  # another process inserted it meanwhile
                with self._engine.begin() as conn:
                    conn.execute(update(settings).where(settings.c.key == key)
                                 .values(value=value))
        return beat

    def last(self, component: str) -> Beat | None:
        with self._engine.connect() as conn:
            value = conn.execute(select(settings.c.value).where(
                settings.c.key == DATABASE_KEY.format(component))).scalar()
            conn.rollback()
        return None if value is None else Beat.from_json(component, str(value))


class HeartbeatThread:
    """Beats ``component`` into ``store`` now and every ``seconds`` from a daemon thread
    until :meth:`stop`. ``data`` (called at each beat) adds figures to the beat. A failed
    beat (Redis or the database down) is logged and the next one tried: the readiness check
    reports the silence."""

    def __init__(self, store: HeartbeatStore, component: str, seconds: float = BEAT_SECONDS,
                 data: Callable[[], dict[str, Any]] | None = None) -> None:
        if seconds <= 0:
            raise ValueError(f"The heartbeat period must be positive seconds, not {seconds}.")
        self._store, self._component, self._seconds = store, component, seconds
        self._data = data
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"printcore-heartbeat-{component}",
                                        daemon=True)

    def start(self) -> HeartbeatThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._store.beat(self._component, self._data() if self._data else None)
            except Exception as err:
                _log.warning("heartbeat failed", component=self._component, error=repr(err))
            self._stop.wait(self._seconds)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


async def beat_forever(store: HeartbeatStore, component: str, seconds: float = BEAT_SECONDS,
                       data: Callable[[], dict[str, Any]] | None = None) -> None:
    """The asyncio form of :class:`HeartbeatThread` (for the Discord bot's loop): beat now,
    then every ``seconds``, until cancelled; each beat runs in a worker thread, so a
    stuck event loop also stops the beats (which is what the check should see)."""
    while True:
        try:
            await asyncio.to_thread(store.beat, component, data() if data else None)
        except Exception as err:
            _log.warning("heartbeat failed", component=component, error=repr(err))
        await asyncio.sleep(seconds)


class SweepTimings:
    """Durations of the queue sweeps (seconds) as a cumulative histogram over
    :data:`SWEEP_BUCKETS`: what the sweeping process observes, carried in its heartbeat
    and published by ``/metrics`` as a Prometheus histogram. Thread-safe."""

    def __init__(self, buckets: tuple[float, ...] = SWEEP_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * len(self.buckets)  # per bucket, not cumulative
        self._count = 0
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """Count one sweep that took ``seconds`` (negative or NaN counts as 0)."""
        seconds = 0.0 if not seconds > 0 or math.isnan(seconds) else float(seconds)
        with self._lock:
            self._count += 1
            self._sum += seconds
            for index, bound in enumerate(self.buckets):
                if seconds <= bound:
                    self._counts[index] += 1
                    break

    def snapshot(self) -> dict[str, Any]:
        """``{"buckets": [[upper bound s, cumulative count], ...], "count": n, "sum": s}``
        (the last bucket, +Inf, is ``count``)."""
        with self._lock:
            cumulative, running = [], 0
            for bound, count in zip(self.buckets, self._counts, strict=True):
                running += count
                cumulative.append([bound, running])
            return {"buckets": cumulative, "count": self._count, "sum": self._sum}

    @classmethod
    def from_snapshot(cls, snapshot: Any) -> SweepTimings:
        """Continue from a stored snapshot (a cron ``printcore sweep --once`` adds to the
        figures of the runs before it); anything unreadable starts from zero."""
        timings = cls()
        try:
            pairs = [(float(b), int(c)) for b, c in snapshot["buckets"]]
            count, total = int(snapshot["count"]), float(snapshot["sum"])
        except (TypeError, KeyError, ValueError):
            return timings
        if tuple(b for b, _ in pairs) != timings.buckets or count < (pairs[-1][1] if pairs else 0):
            return timings
        previous = 0
        for index, (_, cumulative) in enumerate(pairs):
            timings._counts[index] = max(0, cumulative - previous)
            previous = cumulative
        timings._count, timings._sum = count, total
        return timings
