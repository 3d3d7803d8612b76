"""Dramatiq on Redis: the ``printcore.outbox`` queue and its one actor.

A Dramatiq message carries only an outbox row id; the row is the truth. The actor calls
``OutboxService.deliver(id)``, which skips a row already sent, failed, held by another
thread or not due, so a message delivered twice by Dramatiq (after a worker died before
acknowledging it) sends nothing twice. Delivery failures are recorded on the row and
retried by the outbox's own backoff, not by Dramatiq; only an unexpected error (the
database unreachable) is left to Dramatiq's Retries middleware.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
import structlog
from dramatiq.brokers.redis import RedisBroker

from printcore.outbox import OutboxService

__all__ = ["ACTOR_NAME", "QUEUE", "OutboxBroker", "run_worker"]

QUEUE = "printcore.outbox"
ACTOR_NAME = "deliver_outbox_message"

_log = structlog.get_logger("printcore.delivery")


class OutboxBroker:
    """The Redis broker and the delivery actor, for senders and workers alike.

    ``deliver`` is what the actor runs (``OutboxService.deliver``); a process that only
    sends (the web app) passes None. Raises nothing at construction: Redis is first
    contacted by :meth:`enqueue` or the worker (``socket_connect_timeout`` 1 s, so a state
    change never waits long on a dead Redis).
    """

    def __init__(self, redis_url: str,
                 deliver: Callable[[int], str] | None = None,
                 heartbeat_timeout_ms: int = 15_000) -> None:
        self.redis_url = redis_url
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1.0,
                                      socket_timeout=5.0)
        self.broker = RedisBroker(client=client, heartbeat_timeout=heartbeat_timeout_ms)
        self._deliver = deliver

        def deliver_outbox_message(message_id: int) -> None:
            if self._deliver is None:
                raise RuntimeError("This process only sends; run `printcore worker`.")
            outcome = self._deliver(int(message_id))
            _log.debug("outbox message", id=message_id, outcome=outcome)

        self.actor: Any = dramatiq.actor(
            deliver_outbox_message, broker=self.broker, actor_name=ACTOR_NAME,
            queue_name=QUEUE, max_retries=5, min_backoff=1_000, max_backoff=60_000,
        )

    def enqueue(self, message_id: int) -> None:
        """Put one row id on the queue. Raises redis.RedisError when Redis is down."""
        self.actor.send(message_id)

    def ping(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.redis_url, socket_connect_timeout=1.0).ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self.broker.close()


def run_worker(service: OutboxService, redis_url: str, threads: int = 8,
               relay_poll_seconds: float = 1.0, idle_poll_ms: int = 100,
               stop: threading.Event | None = None,
               heartbeat_seconds: float = 15.0) -> None:
    """Run the Dramatiq worker for the outbox queue plus the relay, until SIGTERM/SIGINT
    (or ``stop`` is set). ``idle_poll_ms``: how long an idle consumer waits on Redis
    before looking again (the latency floor at idle). While it runs, a heartbeat goes to
    Redis every ``heartbeat_seconds`` (key ``printcore:heartbeat:worker``, see
    :mod:`adapters.heartbeat`), with the worker's thread count; the readiness check reads
    it."""
    from dramatiq import Worker

    from adapters.delivery.relay import Relay
    from adapters.heartbeat import HeartbeatThread, RedisHeartbeats

    outbox_broker = OutboxBroker(redis_url, deliver=service.deliver)
    relay = Relay(service, outbox_broker.enqueue, channels=tuple(service.senders),
                  poll_seconds=relay_poll_seconds)
    worker = Worker(outbox_broker.broker, queues={QUEUE}, worker_threads=threads,
                    worker_timeout=idle_poll_ms)
    done = stop or threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        _log.info("worker stopping", signal=signum)
        done.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    worker.start()
    relay_thread = threading.Thread(target=relay.run_forever, name="printcore-relay",
                                    daemon=True)
    relay_thread.start()
    beats = RedisHeartbeats(redis_url)
    heartbeat = HeartbeatThread(beats, "worker", heartbeat_seconds,
                                data=lambda: {"threads": threads,
                                              "relay_alive": relay_thread.is_alive()}).start()
    _log.info("worker started", queue=QUEUE, threads=threads)
    try:
        done.wait()
    finally:
        heartbeat.stop()
        beats.close()
        relay.stop()
        worker.stop()
        relay_thread.join(5)
        outbox_broker.close()
        _log.info("worker stopped")
