"""In-memory retention ports over a :class:`~printcore.requests.memory.MemoryDatabase`
and a :class:`~printcore.requests.memory.MemoryFileStore`, for unit tests."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs

from printcore.errors import StorageError
from printcore.events import Event
from printcore.requests.job import Job
from printcore.requests.memory import MemoryDatabase, MemoryFileStore
from printcore.requests.retention import (
    FINAL_STATES,
    JobRecord,
    PlannedJob,
    StoredCandidate,
    WrittenArchive,
)

__all__ = ["MemoryArchiver", "MemoryRetentionFiles", "MemoryRetentionStore"]


def _last_change(db: MemoryDatabase, job: Job) -> datetime:
    found = [e.at for e in db.events
             if e.subject == "job" and e.subject_id == job.id and e.to_status == job.status
             and e.from_status != e.to_status]
    return max(found, default=job.updated_at or job.created_at)


@attrs.define
class MemoryRetentionStore:
    db: MemoryDatabase

    def candidates(self, cutoff: datetime) -> list[StoredCandidate]:
        with self.db.lock:
            found = [StoredCandidate(copy.deepcopy(j), _last_change(self.db, j))
                     for j in self.db.jobs.values() if j.status in FINAL_STATES]
        return sorted((c for c in found if c.last_change_at < cutoff),
                      key=lambda c: (c.last_change_at, c.job.id or 0))

    def _current(self, p: PlannedJob) -> Job | None:
        job = self.db.jobs.get(p.job_id)
        if job is None or job.version != p.version or job.status not in FINAL_STATES:
            return None
        return job

    def records(self, planned: Sequence[PlannedJob]) -> list[JobRecord]:
        out = []
        with self.db.lock:
            for p in planned:
                job = self._current(p)
                if job is None:
                    continue
                events = [{"kind": e.kind, "at": e.at.isoformat(), "actor": e.actor.name,
                           "details": e.details} for e in self.db.events
                          if e.subject == "job" and e.subject_id == p.job_id]
                outbox = [{"id": m.id, "kind": m.kind} for m in self.db.outbox.messages()
                          if (m.subject, m.subject_id) == ("job", p.job_id)]
                out.append(JobRecord(copy.deepcopy(job), {"id": job.id, "status": job.status},
                                     events, outbox))
        return out

    def remove(self, planned: Sequence[PlannedJob], tombstone: Callable[[Job], Event],
               summary: Callable[[list[int], list[int]], Event]) -> tuple[list[int], list[int]]:
        removed: list[int] = []
        skipped: list[int] = []
        with self.db.lock, self.db.outbox.lock:
            for p in planned:
                job = self._current(p)
                if job is None:
                    skipped.append(p.job_id)
                    continue
                del self.db.jobs[p.job_id]
                for message_id, m in list(self.db.outbox.rows.items()):
                    if (m.subject, m.subject_id) == ("job", p.job_id):
                        del self.db.outbox.rows[message_id]
                self._append(tombstone(job))
                removed.append(p.job_id)
            self._append(summary(removed, skipped))
        return removed, skipped

    def _append(self, event: Event) -> None:
        self.db.next_event_id += 1
        self.db.events.append(attrs.evolve(event, id=self.db.next_event_id))


@attrs.define
class MemoryRetentionFiles:
    store: MemoryFileStore

    def _keys(self, job: Job) -> list[str]:
        folder = self.store._folder(job, job.status)
        return [k for k in self.store.files if k.startswith(folder + "/")]

    def measure(self, job: Job) -> tuple[int, int]:
        keys = self._keys(job)
        return sum(len(self.store.files[k]) for k in keys), len(keys)

    def remove(self, job: Job) -> None:
        for key in self._keys(job):
            del self.store.files[key]
        self.store.metadata.pop(self.store._folder(job, job.status), None)


@attrs.define
class MemoryArchiver:
    """Keeps each archive as ``{name: {entry: bytes}}``; ``fail`` (a message) makes every
    write raise StorageError, as a full or read-only archive folder would."""

    files: MemoryFileStore
    archives: dict[str, dict[str, bytes]] = attrs.Factory(dict)
    fail: str | None = None

    def write(self, records: Sequence[JobRecord], manifest: dict[str, Any]) -> WrittenArchive:
        if self.fail is not None:
            raise StorageError(f"Cannot write the archive: {self.fail}. Nothing was removed.")
        entries: dict[str, bytes] = {}
        for r in records:
            folder = self.files._folder(r.job, r.job.status)
            for key, content in self.files.files.items():
                if key.startswith(folder + "/"):
                    entries[f"jobs/{r.job.id}/files/{key[len(folder) + 1:]}"] = content
            entries[f"jobs/{r.job.id}/job.json"] = json.dumps(r.row).encode()
            entries[f"jobs/{r.job.id}/events.json"] = json.dumps(r.events).encode()
        sums = {k: hashlib.sha256(v).hexdigest() for k, v in entries.items()}
        entries["manifest.json"] = json.dumps({**manifest, "entries": sums}).encode()
        name = f"retention-{len(self.archives) + 1}.zip"
        self.archives[name] = entries
        size = sum(len(v) for v in entries.values())
        return WrittenArchive(name, name, size, len(entries) - 1,
                              hashlib.sha256(entries["manifest.json"]).hexdigest())
