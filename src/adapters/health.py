"""Readiness checks: is this process on the right database, storage root and Redis, and is
the outbox moving? Used by ``GET /api/v1/health/ready`` and ``printcore doctor``.

Each check answers a :class:`Check` (``name``, ``ok``, ``detail`` — one sentence —,
``action`` — what to do when it fails — and ``data``, the figures behind it). Nothing a
check reports contains a password: database and Redis are described by kind, host, port
and database name only.

The storage marker: ``<storage root>/.printcore-storage`` holds the lab's storage id (a
random hex string), and the database keeps the same id under the ``storage_id`` key of its
``settings`` table. :func:`ensure_storage_marker` writes both at first start. Afterwards a
root without the marker (or with another id) is the "jobs missing after a reboot" incident:
an empty fallback root, an unmounted disk, or a database that is not the lab's.

Heartbeats (:mod:`adapters.heartbeat`): with ``REDIS_URL`` the ``worker`` check reads
``printcore worker``'s beat from Redis; with Discord configured the ``bot`` check reads
``printcore bot``'s beat from the database. Missing, or older than
``heartbeat_max_age_seconds`` (default 120 s), fails the check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from adapters.heartbeat import Beat, DatabaseHeartbeats, RedisHeartbeats
from adapters.sql.migrate import current_revision, head_revision
from adapters.sql.tables import jobs, outbox, settings

__all__ = [
    "MARKER_NAME", "Check", "Readiness", "ReadinessReport", "ensure_storage_marker",
    "storage_id_in_database",
]

MARKER_NAME = ".printcore-storage"
STORAGE_ID_KEY = "storage_id"
#: The outbox check fails when a message has been waiting longer than this (seconds).
OUTBOX_MAX_AGE_SECONDS = 3600
#: The storage check fails with less free space than this (bytes): one more upload.
MIN_FREE_BYTES = 200_000_000
REDIS_TIMEOUT_SECONDS = 2.0
#: A heartbeat older than this fails the worker and bot checks (seconds).
HEARTBEAT_MAX_AGE_SECONDS = 120


@attrs.frozen
class Check:
    """One check's outcome. ``name``: ``database``, ``storage``, ``redis``, ``worker``,
    ``bot`` or ``outbox``;
    ``detail``: what was found; ``action``: what to do (None when ``ok``)."""

    name: str
    ok: bool
    detail: str
    action: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail,
                "action": self.action, "data": self.data}


@attrs.frozen
class ReadinessReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failing(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]

    def as_json(self) -> dict[str, Any]:
        """``{"status": "ok"|"failing", "failing": [names], "checks": [...]}``."""
        return {"status": "ok" if self.ok else "failing", "failing": self.failing,
                "checks": [check.as_json() for check in self.checks]}


def _safe(err: BaseException, *secrets: str | None) -> str:
    """An error's first line, with any of ``secrets`` (passwords) blanked out."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def storage_id_in_database(engine: Engine) -> str | None:
    """The lab's storage id kept in the database, or None (never set, or no table yet)."""
    with engine.connect() as conn:
        value = conn.execute(
            select(settings.c.value).where(settings.c.key == STORAGE_ID_KEY)).scalar()
        conn.rollback()
    return None if value is None else str(value)


def _read_marker(root: Path) -> str | None:
    try:
        data = json.loads((root / MARKER_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return ""  # present but unreadable: never matches
    value = data.get("storage_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def _write_marker(root: Path, storage_id: str) -> None:
    text = json.dumps({"storage_id": storage_id, "written_at": datetime.now(UTC).isoformat(),
                       "what": "printcore storage root; do not delete"}, indent=2)
    temp = root / f"{MARKER_NAME}.{uuid.uuid4().hex}.tmp"
    temp.write_text(text + "\n", encoding="utf-8")
    os.replace(temp, root / MARKER_NAME)


def _has_job_folders(root: Path) -> bool:
    """Whether any status folder under ``root`` holds a job folder."""
    try:
        return any(entry.is_dir() for folder in root.iterdir()
                   if folder.is_dir() and not folder.name.startswith(".")
                   for entry in folder.iterdir())
    except OSError:
        return False


def ensure_storage_marker(engine: Engine, root: Path) -> str | None:
    """At start: give the lab a storage id and write the marker, once. Returns the id in
    force, or None when it was not safe to write one (the database has jobs but the root
    holds none of their folders: the readiness check then reports the storage root).

    With an id already in the database nothing is written (a missing or foreign marker is
    for the check to report, never to paper over). Never raises: a root that cannot be
    written or a database without the ``settings`` table (not migrated) leaves things as
    they are for the readiness check to report."""
    try:
        return _ensure_marker(engine, root)
    except (OSError, SQLAlchemyError):
        return None


def _ensure_marker(engine: Engine, root: Path) -> str | None:
    existing = storage_id_in_database(engine)
    if existing is not None:
        return existing
    marker = _read_marker(root)
    if marker is not None:
        return None  # a root set up by another database: this one must not claim it
    with engine.connect() as conn:
        job_count = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
        conn.rollback()
    if job_count and not _has_job_folders(root):
        return None
    storage_id = uuid.uuid4().hex
    try:
        with engine.begin() as conn:
            conn.execute(insert(settings).values(key=STORAGE_ID_KEY, value=storage_id))
    except IntegrityError:  # another process started at the same moment
        return storage_id_in_database(engine)
    _write_marker(root, storage_id)
    return storage_id


class Readiness:
    """The checks for one process. ``now`` gives the current UTC time (the app's clock);
    ``redis_url`` None skips the Redis and worker checks; ``discord`` True (a
    ``DISCORD_TOKEN`` is set) adds the bot check. Thresholds: ``outbox_max_age_seconds``
    (seconds), ``min_free_bytes`` (bytes), ``heartbeat_max_age_seconds`` (seconds; the
    heartbeats' ages are measured on the wall clock, not ``now``, as other processes
    write them)."""

    def __init__(self, engine: Engine, storage_root: Path, *, redis_url: str | None = None,
                 now: Callable[[], datetime] | None = None,
                 outbox_max_age_seconds: int = OUTBOX_MAX_AGE_SECONDS,
                 min_free_bytes: int = MIN_FREE_BYTES, discord: bool = False,
                 heartbeat_max_age_seconds: int = HEARTBEAT_MAX_AGE_SECONDS,
                 watched_printers: Sequence[str] = ()) -> None:
        self._engine = engine
        self._root = Path(storage_root)
        self._redis_url = redis_url
        self._now = now or (lambda: datetime.now(UTC))
        self._max_age = outbox_max_age_seconds
        self._min_free = min_free_bytes
        self._discord = discord
        self._heartbeat_max_age = heartbeat_max_age_seconds
        self._watched = tuple(watched_printers)

    def run(self) -> ReadinessReport:
        """Every check, in order: database, storage, redis and worker (with Redis), bot
        (with Discord), outbox. Never raises for a failing check; blocking (run it off
        the event loop)."""
        checks = [self.database()]
        db_ok = "revision" in checks[0].data  # connected (perhaps behind the head)
        checks.append(self.storage(db_ok))
        if self._redis_url:
            redis_check = self.redis()
            checks += [redis_check, self.worker(redis_check.ok)]
        if self._discord:
            checks.append(self.bot(db_ok))
        if self._watched:
            checks.append(self.watcher(db_ok))
        checks.append(self.outbox(db_ok))
        return ReadinessReport(tuple(checks))

    # -- database -------------------------------------------------------------------
    def _where(self) -> dict[str, Any]:
        url = self._engine.url
        kind = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql"
        data: dict[str, Any] = {"kind": kind, "database": url.database}
        if kind == "postgresql":
            data.update(host=url.host or "localhost", port=url.port or 5432)
            options = url.query.get("options")
            found = re.search(r"search_path[= ]([\w,\"$]+)", str(options or ""))
            if found:
                data["schema"] = found.group(1)
        return data

    def database(self) -> Check:
        where = self._where()
        shown = (f"SQLite at {where['database']}" if where["kind"] == "sqlite" else
                 f"PostgreSQL {where['database']} on {where['host']}:{where['port']}")
        try:
            current = current_revision(self._engine)
        except SQLAlchemyError as err:
            return Check("database", False, f"{shown}: cannot connect: "
                         f"{_safe(err, self._engine.url.password)}",
                         "Start the database server or correct DATABASE_URL, then run "
                         "`printcore doctor` again.", where)
        head = head_revision()
        data = {**where, "revision": current, "head": head}
        if current == head:
            return Check("database", True, f"{shown}, at migration {current} (this "
                         "version's head).", None, data)
        return Check("database", False, f"{shown} is at migration {current or 'none'}, "
                     f"this version of printcore expects {head}.",
                     "Run `printcore db upgrade` (back the database up first); if the "
                     "database is newer, install the printcore version that made it.", data)

    # -- storage --------------------------------------------------------------------
    def storage(self, db_ok: bool = True) -> Check:
        root = self._root
        data: dict[str, Any] = {"root": str(root)}
        if not root.is_dir():
            return Check("storage", False, f"The storage root {root} does not exist.",
                         "Mount the lab's storage disk or set PRINTCORE_STORAGE to "
                         "where the job folders are; do not create an empty folder.", data)
        probe = root / f".probe-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"printcore readiness probe\n")
            probe.unlink()
        except OSError as err:
            return Check("storage", False, f"The storage root {root} is not writable: "
                         f"{err.strerror or err}.",
                         "Give the user running printcore write access to the storage "
                         "root (or remount it read-write).", {**data, "writable": False})
        free = shutil.disk_usage(root).free
        data.update(writable=True, free_bytes=free)
        marker = _read_marker(root)
        data["marker"] = marker is not None
        expected: str | None = None
        job_count = 0
        if db_ok:
            try:
                expected = storage_id_in_database(self._engine)
                with self._engine.connect() as conn:
                    job_count = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
                    conn.rollback()
            except SQLAlchemyError:
                db_ok = False
        data["jobs_in_database"] = job_count
        if db_ok and marker is None and (expected is not None or job_count):
            return Check("storage", False, f"The storage root {root} has no "
                         f"{MARKER_NAME} marker, but the database knows {job_count} "
                         "job(s): this is not the lab's storage root (a disk not mounted, "
                         "or the wrong folder).",
                         "Mount the lab's storage or point PRINTCORE_STORAGE at it, "
                         "then restart printcore; `printcore storage check` lists what is "
                         "missing.", data)
        if db_ok and marker is not None and marker != expected:
            return Check("storage", False, f"The storage root {root} belongs to another "
                         "database (its marker's storage id is not this database's).",
                         "Check DATABASE_URL: printcore may be on a fallback or new "
                         "database while the lab's jobs are in another one.", data)
        if free < self._min_free:
            return Check("storage", False, f"Only {free} bytes free under {root} "
                         f"(at least {self._min_free} needed for one more upload).",
                         "Free disk space: archive old jobs or grow the disk.", data)
        return Check("storage", True, f"{root} is writable, {free // 1_000_000} MB free, "
                     "and is the lab's root.", None, data)

    # -- redis ----------------------------------------------------------------------
    def redis(self) -> Check:
        import redis

        assert self._redis_url is not None
        client = redis.Redis.from_url(self._redis_url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                      socket_timeout=REDIS_TIMEOUT_SECONDS)
        pool_kwargs = client.connection_pool.connection_kwargs
        data = {"host": pool_kwargs.get("host", pool_kwargs.get("path")),
                "port": pool_kwargs.get("port"), "db": pool_kwargs.get("db", 0)}
        try:
            client.ping()
        except (redis.RedisError, OSError) as err:
            return Check("redis", False, f"Redis at {data['host']}:{data['port']} does not "
                         f"answer: {_safe(err, pool_kwargs.get('password'))}",
                         "Start Redis (messages wait in the outbox meanwhile) or correct "
                         "REDIS_URL.", data)
        finally:
            client.close()
        return Check("redis", True, f"Redis at {data['host']}:{data['port']} answers.",
                     None, data)

    # -- heartbeats ----------------------------------------------------------------
    def worker(self, redis_ok: bool = True) -> Check:
        """``printcore worker``'s heartbeat in Redis (needs ``redis_url``)."""
        if not redis_ok or not self._redis_url:
            return Check("worker", False, "Not checked: Redis does not answer.",
                         "Fix the redis check first.", {})
        import redis

        store = RedisHeartbeats(self._redis_url, timeout=REDIS_TIMEOUT_SECONDS)
        try:
            beat = store.last("worker")
        except (redis.RedisError, OSError) as err:
            return Check("worker", False, f"Cannot read the worker's heartbeat from Redis: "
                         f"{_safe(err)}", "Fix the redis check first.", {})
        finally:
            store.close()
        return self._heartbeat(
            "worker", beat, "`printcore worker`",
            "Start `printcore worker` (systemd: `systemctl start printcore-worker`; Docker: "
            "the worker service); its log says why it stopped. Until then emails wait in "
            "the outbox.")

    def bot(self, db_ok: bool = True) -> Check:
        """``printcore bot``'s heartbeat in the database."""
        if not db_ok:
            return Check("bot", False, "Not checked: the database is not usable.",
                         "Fix the database check first.", {})
        try:
            beat = DatabaseHeartbeats(self._engine).last("bot")
        except SQLAlchemyError as err:
            return Check("bot", False, f"Cannot read the bot's heartbeat: {_safe(err)}",
                         "Run `printcore db upgrade`.", {})
        return self._heartbeat(
            "bot", beat, "`printcore bot`",
            "Start `printcore bot` (systemd: `systemctl start printcore-bot`; Docker: the "
            "bot service) and check its log for a Discord login or network error. Until "
            "then no offers are made and no deadline fires.")

    def watcher(self, db_ok: bool = True) -> Check:
        """The printer watcher's heartbeat (``printcore watch``, or ``printcore bot`` with
        watched printers) and, in it, each watched printer's connection: a printer that is
        not connected fails the check, with the watcher's last error for it."""
        if not db_ok:
            return Check("watcher", False, "Not checked: the database is not usable.",
                         "Fix the database check first.", {})
        try:
            beat = DatabaseHeartbeats(self._engine).last("watcher")
        except SQLAlchemyError as err:
            return Check("watcher", False, f"Cannot read the watcher's heartbeat: {_safe(err)}",
                         "Run `printcore db upgrade`.", {})
        action = ("Start `printcore watch` (or `printcore bot`, which watches too) and check "
                  "its log; docs/printers.md has the troubleshooting. Until then members "
                  "report their prints by hand, as ever.")
        check = self._heartbeat("watcher", beat, "the printer watcher", action)
        if not check.ok or beat is None:
            return check
        printers = (beat.data or {}).get("printers") or {}
        down = []
        for name in self._watched:
            state = printers.get(name)
            if not state or not state.get("connected"):
                why = (state or {}).get("last_error") or "not connected"
                down.append(f"{name} ({why})")
        data = {**check.data, "printers": printers}
        if down:
            return Check("watcher", False, f"The watcher runs, but cannot reach: "
                         f"{'; '.join(down)}.", "Check that the printer is on, in LAN mode, "
                         "with the access code and certificate in the config "
                         "(docs/printers.md).", data)
        return Check("watcher", True, f"{check.detail} All {len(self._watched)} watched "
                     "printer(s) connected.", None, data)

    def _heartbeat(self, name: str, beat: Beat | None, what: str, action: str) -> Check:
        limit = self._heartbeat_max_age
        data: dict[str, Any] = {"max_age_seconds": limit}
        if beat is None:
            return Check(name, False, f"No heartbeat from {what}: it is not running (or "
                         "has never run against this database and Redis).", action, data)
        age = int(beat.age_seconds())
        data.update(age_seconds=age, at=beat.at.isoformat(), host=beat.host, pid=beat.pid)
        where = f"{beat.host}, pid {beat.pid}"
        if age > limit:
            return Check(name, False, f"The last heartbeat of {what} ({where}) is {age} s "
                         f"old (more than {limit} s): it stopped or hangs.", action, data)
        return Check(name, True, f"{what} ({where}) beat {age} s ago.", None, data)

    # -- outbox ---------------------------------------------------------------------
    def outbox(self, db_ok: bool = True) -> Check:
        if not db_ok:
            return Check("outbox", False, "Not checked: the database is not usable.",
                         "Fix the database check first.", {})
        try:
            with self._engine.connect() as conn:
                waiting, oldest = conn.execute(
                    select(func.count(), func.min(outbox.c.created_at))
                    .where(outbox.c.status == "pending")).one()
                failed = conn.execute(select(func.count()).select_from(outbox)
                                      .where(outbox.c.status == "failed")).scalar_one()
                conn.rollback()
        except SQLAlchemyError as err:
            return Check("outbox", False, f"Cannot read the outbox: {_safe(err)}",
                         "Run `printcore db upgrade`.", {})
        age = 0
        if oldest is not None:
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            age = max(0, int((self._now() - oldest).total_seconds()))
        data = {"waiting": int(waiting), "oldest_waiting_seconds": age,
                "failed": int(failed), "max_age_seconds": self._max_age}
        if age > self._max_age:
            return Check("outbox", False, f"{waiting} message(s) waiting, the oldest for "
                         f"{age} s (more than {self._max_age} s).",
                         "Check that messages are being delivered: `printcore worker` "
                         "running (with REDIS_URL) or the web process up; the mail server "
                         "reachable; `printcore outbox list` shows the errors.", data)
        return Check("outbox", True, f"{waiting} message(s) waiting"
                     + (f", the oldest for {age} s" if waiting else "")
                     + f"; {failed} failed.", None, data)
