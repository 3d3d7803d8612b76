"""Jobs' soft locks in the ``job_locks`` table (``printcore.requests.ports.JobLockRepository``).

The swap is one statement, atomic on both databases:

* no lock expected: ``INSERT … ON CONFLICT (job_id) DO NOTHING`` — of two takes of a
  free lock, the second inserts nothing (on PostgreSQL it waits for the first to commit,
  then conflicts; on SQLite ``BEGIN IMMEDIATE`` has queued it behind the first anyway);
* a lock expected: ``UPDATE``/``DELETE … WHERE job_id = ? AND staff_name = ? AND
  workstation = ? AND version = ?`` — under READ COMMITTED the loser's statement waits
  for the winner's row lock, then re-reads the row and matches nothing.

Either way the loser's transaction is not aborted, so the service can read the winner's
lock in it and say who holds it.
"""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adapters.sql.base import HasConnection
from adapters.sql.tables import job_locks
from printcore.requests.locks import JobLock

__all__ = ["SqlJobLockRepository"]


def _lock(row: Any) -> JobLock:
    return JobLock(job_id=row["job_id"], staff_name=row["staff_name"],
                   workstation=row["workstation"], action=row["action"],
                   taken_at=row["taken_at"], expires_at=row["expires_at"],
                   version=row["version"])


def _values(lock: JobLock) -> dict[str, Any]:
    return {"job_id": lock.job_id, "staff_name": lock.staff_name,
            "workstation": lock.workstation, "action": lock.action,
            "taken_at": lock.taken_at, "expires_at": lock.expires_at,
            "version": lock.version}


class SqlJobLockRepository:
    def __init__(self, uow: HasConnection) -> None:
        self._uow = uow

    @property
    def _conn(self) -> Connection:
        return self._uow.connection

    def get(self, job_id: int) -> JobLock | None:
        row = self._conn.execute(
            select(job_locks).where(job_locks.c.job_id == job_id)
        ).mappings().first()
        return None if row is None else _lock(row)

    def swap(self, job_id: int, expected: JobLock | None, new: JobLock | None) -> bool:
        """See the module: True when ``expected`` was still the stored lock."""
        if new is not None and new.job_id != job_id:
            raise ValueError("The new lock is for another job.")
        if expected is None:
            if new is None:
                return self.get(job_id) is None
            dialect_insert = (postgresql.insert if self._conn.dialect.name == "postgresql"
                              else sqlite.insert)
            stmt = dialect_insert(job_locks).values(**_values(new))
            stmt = stmt.on_conflict_do_nothing(index_elements=["job_id"])
            # RETURNING: a conflict returns no row (rowcount is not reliable here).
            return self._conn.execute(stmt.returning(job_locks.c.job_id)).first() is not None
        same = (job_locks.c.job_id == job_id,
                job_locks.c.staff_name == expected.staff_name,
                job_locks.c.workstation == expected.workstation,
                job_locks.c.version == expected.version)
        if new is None:
            result = self._conn.execute(delete(job_locks).where(*same))
        else:
            values = _values(new)
            del values["job_id"]
            result = self._conn.execute(update(job_locks).where(*same).values(**values))
        return bool(result.rowcount == 1)

    def for_jobs(self, job_ids: builtins.list[int]) -> dict[int, JobLock]:
        found: dict[int, JobLock] = {}
        for start in range(0, len(job_ids), 500):  # bound the IN list
            chunk = job_ids[start:start + 500]
            rows = self._conn.execute(
                select(job_locks).where(job_locks.c.job_id.in_(chunk))).mappings()
            found.update({row["job_id"]: _lock(row) for row in rows})
        return found
