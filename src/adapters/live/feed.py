"""What changed: the ``events`` table read by id (``printcore`` appends one event per
change, in the change's transaction)."""

from __future__ import annotations

from datetime import datetime

import attrs
from sqlalchemy import Engine, func, select

from adapters.sql.tables import events

__all__ = ["Change", "ChangeFeed"]


@attrs.frozen
class Change:
    """One committed change: ``id`` (the event's id: increasing, the stream's
    ``Last-Event-ID``), ``subject`` (``job``, ``printer``, ``ticket``, …), ``subject_id``,
    ``kind`` (the event, e.g. ``submit``, ``approve``, ``claim``), ``at`` (UTC) and
    ``to_status`` (the state it left the subject in, when it changed one)."""

    id: int
    subject: str
    subject_id: int
    kind: str
    at: datetime
    to_status: str | None

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "subject": self.subject, "subject_id": self.subject_id,
                "kind": self.kind, "at": self.at.isoformat(), "to_status": self.to_status}


class ChangeFeed:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def latest_id(self) -> int:
        """The newest event's id (0 when there is none)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())

    def after(self, last_id: int, limit: int = 500) -> list[Change]:
        """Changes with an id above ``last_id``, oldest first, at most ``limit``."""
        query = (select(events.c.id, events.c.subject, events.c.subject_id, events.c.kind,
                        events.c.at, events.c.to_status)
                 .where(events.c.id > last_id).order_by(events.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [Change(int(r.id), r.subject, int(r.subject_id), r.kind, r.at, r.to_status)
                    for r in conn.execute(query)]
