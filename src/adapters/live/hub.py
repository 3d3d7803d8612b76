"""Wake-ups: ``LiveHub.notify()`` after a commit wakes every open stream of this process
at once, and, through a channel, those of the lab's other processes.

* ``notify`` may be called from any thread and never raises (a lost wake-up costs at most
  one poll period: the streams read the event log anyway).
* Channels: :class:`PostgresChannel` (``NOTIFY printcore_changes`` on commit, a ``LISTEN``
  thread in each web process), :class:`RedisChannel` (publish / subscribe). SQLite needs
  none: its web process is the only one that serves pages.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["CHANNEL", "LiveHub", "PostgresChannel", "RedisChannel"]

CHANNEL = "printcore_changes"
log = logging.getLogger("printcore.live")


class Channel(Protocol):
    def publish(self) -> None:
        """Tell the other processes that something changed (best effort)."""
        ...

    def listen(self, on_message: Callable[[], None]) -> None:
        """Start a daemon thread calling ``on_message()`` for each other process's publish."""
        ...

    def close(self) -> None: ...


class LiveHub:
    """``channel``: None (one process), or a channel to the lab's other processes.

    ``poll_seconds``: how often an idle stream reads the event log anyway: 1 s without a
    channel (SQLite: a change made by another process, e.g. ``printcore queue``, has no
    wake-up), 5 s with one (wake-ups reach every process; the poll is a safety net)."""

    def __init__(self, channel: Channel | None = None,
                 poll_seconds: float | None = None) -> None:
        self.channel = channel
        self.poll_seconds = poll_seconds or (1.0 if channel is None else 5.0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self.generation = 0

    # -- the serving side ---------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve streams on ``loop`` (the web process's lifespan calls this) and listen to
        the other processes."""
        self._loop = loop
        self._event = asyncio.Event()
        if self.channel is not None:
            self.channel.listen(self._wake_threadsafe)

    async def wait(self, timeout: float) -> bool:
        """Until the next change, or ``timeout`` seconds; True when woken."""
        event = self._event
        if event is None:
            await asyncio.sleep(timeout)
            return False
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _wake(self) -> None:
        self.generation += 1
        old, self._event = self._event, asyncio.Event()
        if old is not None:
            old.set()

    def _wake_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop is shutting down
                pass

    # -- the committing side ------------------------------------------------------------

    def notify(self) -> None:
        """Something was committed: wake this process's streams and tell the others."""
        self._wake_threadsafe()
        if self.channel is not None:
            try:
                self.channel.publish()
            except Exception as err:  # never fail a committed change over a wake-up
                log.warning("live update not published: %s", err)

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()


class PostgresChannel:
    """``NOTIFY``/``LISTEN`` on ``printcore_changes``; ``dsn`` is a libpq URL
    (``postgresql://…``, no ``+psycopg``)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = threading.Lock()
        self._conn: Any = None
        self._stop = threading.Event()

    def publish(self) -> None:
        import psycopg

        with self._lock:
            for _ in range(2):  # one reconnect after a dropped connection
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(self.dsn, autocommit=True,
                                                     connect_timeout=3)
                    self._conn.execute(f"NOTIFY {CHANNEL}")
                    return
                except psycopg.Error:
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
            raise ConnectionError("PostgreSQL NOTIFY failed twice")

    def listen(self, on_message: Callable[[], None]) -> None:
        def run() -> None:
            import psycopg

            while not self._stop.is_set():
                try:
                    with psycopg.connect(self.dsn, autocommit=True, connect_timeout=3) as conn:
                        conn.execute(f"LISTEN {CHANNEL}")
                        on_message()  # catch up on what happened while not listening
                        while not self._stop.is_set():
                            for _ in conn.notifies(timeout=1.0):
                                on_message()
                except Exception as err:
                    log.warning("LISTEN %s lost (%s); retrying in 2 s", CHANNEL, err)
                    time.sleep(2)

        threading.Thread(target=run, name="printcore-live-listen", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class RedisChannel:
    """Redis pub/sub on ``printcore_changes`` (with the lab's namespace)."""

    def __init__(self, url: str, namespace: str = "printcore") -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
        self.name = f"{namespace}:{CHANNEL}"
        self._stop = threading.Event()

    def publish(self) -> None:
        self.client.publish(self.name, b"1")

    def listen(self, on_message: Callable[[], None]) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.name)
                    on_message()
                    while not self._stop.is_set():
                        if pubsub.get_message(timeout=1.0) is not None:
                            on_message()
                except Exception as err:
                    log.warning("Redis subscribe lost (%s); retrying in 2 s", err)
                    time.sleep(2)

        threading.Thread(target=run, name="printcore-live-subscribe", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
