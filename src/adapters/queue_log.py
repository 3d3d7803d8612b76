"""A queue notifier for processes without Discord (web, CLI, cron sweep): it logs each
notice with structlog and keeps the last ones in memory, so ``printcore queue`` can print
what it would have told members. The Discord bot uses ``adapters.discord`` instead."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import structlog

from printcore.queue.ports import QueueNotice

__all__ = ["LogNotifier"]


class LogNotifier:
    """``printcore.queue.ports.QueueNotifier`` that logs; never raises."""

    def __init__(self, keep: int = 100) -> None:
        self.recent: deque[QueueNotice] = deque(maxlen=keep)
        self._log = structlog.get_logger("printcore.queue")

    def notify(self, notices: Iterable[QueueNotice]) -> None:
        for notice in notices:
            self.recent.append(notice)
            self._log.info(
                "queue notice", kind=notice.kind, member=notice.member,
                member_name=notice.member_name, ticket=notice.ticket_id,
                printer=notice.printer,
                deadline=notice.deadline.isoformat() if notice.deadline else None,
            )
