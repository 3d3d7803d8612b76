"""The relay: hands committed outbox rows to the message broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import structlog

from printcore.outbox import OutboxService

__all__ = ["Relay"]

_log = structlog.get_logger("printcore.delivery")


class Relay:
    """``enqueue(message_id)`` puts one row id on the broker (raises when it cannot).

    :meth:`kick` is the fast path, called with the ids a commit just added; :meth:`run_once`
    (every ``poll_seconds`` in :meth:`run_forever`) hands over every due row not handed
    over within the policy's ``relay_grace``. After the broker fails, the fast path stays
    quiet for ``pause_seconds`` (a state change must not wait on a dead Redis); the poll
    keeps trying and catches up once the broker is back.
    """

    def __init__(self, service: OutboxService, enqueue: Callable[[int], None],
                 channels: Sequence[str] = ("email",), poll_seconds: float = 1.0,
                 batch: int = 500, pause_seconds: float = 10.0) -> None:
        self.service = service
        self.enqueue = enqueue
        self.channels = tuple(channels)
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.pause_seconds = pause_seconds
        self._paused_until = 0.0
        self._stop = threading.Event()

    def _mark(self, ids: Sequence[int]) -> None:
        with self.service.uow() as uow:
            uow.outbox.mark_relayed(ids, self.service.clock.now())
            uow.commit()

    def _hand_over(self, ids: Sequence[int]) -> int:
        """Mark the rows handed over first (so this relay's next poll does not hand them
        over again while a worker is still on them), then enqueue; rows that could not be
        enqueued are unmarked again."""
        self._mark(ids)
        done = 0
        try:
            for message_id in ids:
                self.enqueue(message_id)
                done += 1
        finally:
            if done < len(ids):
                with self.service.uow() as uow:
                    uow.outbox.mark_relayed(ids[done:], None)
                    uow.commit()
        return done

    def kick(self, message_ids: Sequence[int]) -> None:
        """Hand over rows just committed; never raises (the poll retries them)."""
        if time.monotonic() < self._paused_until:
            return
        try:
            with self.service.uow() as uow:
                wanted = [i for i in message_ids if uow.outbox.get(i).channel in self.channels]
            self._hand_over(wanted)
        except Exception as err:
            self._paused_until = time.monotonic() + self.pause_seconds
            _log.warning("outbox hand-over failed; the relay will retry", error=repr(err))

    def run_once(self) -> int:
        """Hand over every due row not recently handed over. Raises what the broker or
        database raised (after marking the rows it did hand over)."""
        ids = self.service.due(self.batch, self.channels, relay=True)
        return self._hand_over(ids) if ids else 0

    def run_forever(self) -> None:
        """Loop until :meth:`stop`; a failed round is logged and retried."""
        while not self._stop.is_set():
            try:
                moved = self.run_once()
                if moved:
                    self._paused_until = 0.0
                    _log.info("outbox relayed", messages=moved)
            except Exception as err:
                _log.warning("outbox relay round failed", error=repr(err))
                moved = 0
            if moved < self.batch:
                self._stop.wait(self.poll_seconds)

    def stop(self) -> None:
        self._stop.set()
