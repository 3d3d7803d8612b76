"""Workstation sessions in the ``staff_sessions`` table (``printcore.ports.SessionRepository``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from adapters.sql.base import HasConnection
from adapters.sql.tables import staff_sessions
from printcore.ports import WorkstationSession

__all__ = ["SqlSessionRepository"]


def _session(row: Any) -> WorkstationSession:
    return WorkstationSession(
        id=row["id"], workstation=row["workstation"], started_at=row["started_at"],
        last_seen_at=row["last_seen_at"], ended_at=row["ended_at"], ended_by=row["ended_by"],
    )


class SqlSessionRepository:
    def __init__(self, uow: HasConnection) -> None:
        self._uow = uow

    @property
    def _conn(self) -> Connection:
        return self._uow.connection

    def add(self, session: WorkstationSession) -> None:
        self._conn.execute(insert(staff_sessions).values(
            id=session.id, workstation=session.workstation, started_at=session.started_at,
            last_seen_at=session.last_seen_at, ended_at=session.ended_at,
            ended_by=session.ended_by))

    def get(self, session_id: str) -> WorkstationSession | None:
        row = self._conn.execute(
            select(staff_sessions).where(staff_sessions.c.id == session_id)
        ).mappings().first()
        return None if row is None else _session(row)

    def list(self, active_only: bool = True) -> list[WorkstationSession]:
        query = select(staff_sessions).order_by(staff_sessions.c.started_at.desc())
        if active_only:
            query = query.where(staff_sessions.c.ended_at.is_(None))
        return [_session(row) for row in self._conn.execute(query).mappings()]

    def touch(self, session_id: str, at: datetime) -> None:
        self._conn.execute(update(staff_sessions).where(staff_sessions.c.id == session_id)
                           .values(last_seen_at=at))

    def end(self, session_id: str, at: datetime, by: str) -> bool:
        result = self._conn.execute(
            update(staff_sessions)
            .where(staff_sessions.c.id == session_id, staff_sessions.c.ended_at.is_(None))
            .values(ended_at=at, ended_by=by))
        return bool(result.rowcount == 1)

    def end_all(self, at: datetime, by: str) -> int:
        result = self._conn.execute(
            update(staff_sessions).where(staff_sessions.c.ended_at.is_(None))
            .values(ended_at=at, ended_by=by))
        return int(result.rowcount)
