"""One-file backups of a printcore lab (database + storage root), and restoring them.

Archive: an uncompressed tar, written to ``PATH.partial`` and renamed to ``PATH`` when
complete (a crashed backup never leaves a file that looks whole)::

    database/printcore.db        SQLite, copied with the online backup API, or
    database/printcore.dump      PostgreSQL, ``pg_dump --format=custom`` of the database
    storage/<relative path>      the storage root's files of the snapshot's jobs (below)
    home/secret_key              the embedded default key, when the home holds one
    manifest.json                last: format, printcore version, migration revision,
                                 database kind, created_at (UTC, ISO 8601), jobs (count),
                                 left_out (job folders not in the snapshot) and every other
                                 member with its size (bytes) and sha256 (hex)

Consistency: the database is snapshotted first, then the storage is copied, and only the
storage that matches the snapshot is kept.

* SQLite: ``sqlite3.Connection.backup`` copies one consistent snapshot while the server
  writes; the jobs are read from that copy.
* PostgreSQL: one REPEATABLE READ transaction exports its snapshot
  (``pg_export_snapshot()``), reads the jobs in it, and ``pg_dump --snapshot`` dumps
  exactly that snapshot; the transaction stays open until pg_dump is done.

Then the storage root is walked. A file under a status folder (``Uploaded/…``) is kept only
when its job folder is the folder of a snapshot job in its snapshot state: the folders of
jobs submitted after the snapshot, and the copies of moves committed after it, are left
out (named in the manifest's ``left_out``), so the restored storage audits clean. Files
outside status folders (the ``.printcore-storage`` marker) are kept; ``.staging`` never.
A move between status folders copies, commits and then deletes, so a snapshot job can
lose its snapshot folder while the storage is walked; every snapshot job is checked for
its folder and the backup is taken again (up to ``ATTEMPTS`` times) when one is missing.

Restore (``restore``) goes into an empty home only: for PostgreSQL, a database with no
tables (``pg_restore --single-transaction``, so a failed restore leaves it empty), and an
empty storage root. Every checksum is verified before anything is written; afterwards the
restored database's migration revision is read back and compared with the manifest.

PostgreSQL tools: ``pg_dump``/``pg_restore`` on PATH or in ``/usr/lib/postgresql/*/bin``
(newest first). A password in DATABASE_URL goes to the child in ``PGPASSWORD``, never on
its command line. A URL naming a schema (``options=-csearch_path=…``) is refused: back up a
lab that has a database of its own.

Errors: ``BackupError`` (a ValidationError: exit 1 at the command line) for a refusal with
a sentence saying what to do; nothing is written or changed when one is raised.
StorageError (exit 2) when the database cannot be reached.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import attrs

from printcore.errors import ValidationError
from printcore.requests.job import JobStatus
from printcore.requests.naming import job_basename

__all__ = ["ATTEMPTS", "BackupError", "BackupResult", "RestoreResult", "backup", "restore"]

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE_MEMBER = "database/printcore.db"
PG_DATABASE_MEMBER = "database/printcore.dump"
SECRET_MEMBER = "home/secret_key"
#: Backups taken again at most this many times while storage moves under them.
ATTEMPTS = 5
_CHUNK = 1 << 20
_STATUS_FOLDERS = frozenset(s.folder for s in JobStatus)
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
#: Seconds pg_dump / pg_restore may take before they are stopped.
PG_TOOL_TIMEOUT_S = 3600


class BackupError(ValidationError):
    """A backup or restore refused; the message says why and what to do. Nothing changed."""


@attrs.frozen
class BackupResult:
    path: Path
    files: int  # storage files in the archive
    bytes: int  # size of the archive
    revision: str
    jobs: int
    attempts: int
    left_out: int = 0  # job folders not in the database snapshot


@attrs.frozen
class RestoreResult:
    files: int
    jobs: int
    revision: str
    created_at: str
    kind: str = "sqlite"
    at_head: bool = True


@attrs.frozen
class _Snapshot:
    member: str  # archive member name of the database part
    path: Path  # the database part on disk
    revision: str
    jobs: list[str]  # storage folder of each job, relative to the root


def _is_sqlite(database_url: str) -> bool:
    return database_url.strip().startswith("sqlite")


def _sqlite_path(database_url: str) -> Path:
    if not database_url.startswith("sqlite:///"):
        raise BackupError("A SQLite DATABASE_URL names a file: sqlite:///path/to/printcore.db.")
    return Path(database_url[len("sqlite:///"):])


# --- PostgreSQL ----------------------------------------------------------------------


def pg_tool(name: str) -> str:
    """The path of PostgreSQL client program ``name`` (``pg_dump``, ``pg_restore``, ``psql``):
    PATH first, then ``/usr/lib/postgresql/<version>/bin`` (newest). Raises BackupError
    naming the package to install when there is none."""
    found = shutil.which(name)
    if found:
        return found

    def version(path: str) -> tuple[int, ...]:  # /usr/lib/postgresql/15/bin/pg_dump
        return tuple(int(d) for d in re.findall(r"\d+", Path(path).parent.parent.name))

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version,
                        reverse=True)
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    raise BackupError(f"{name} was not found on PATH or in /usr/lib/postgresql/*/bin; install "
                      "the PostgreSQL client tools of the server's major version or newer "
                      "(Debian/Ubuntu: apt install postgresql-client; macOS: brew install "
                      "libpq) and try again. Nothing was written.")


def _pg_connection(database_url: str) -> tuple[list[str], dict[str, str]]:
    """Command-line options and child environment for the libpq tools (no password in
    the options: it goes in PGPASSWORD)."""
    from adapters.sql.engine import normalise_url

    url = normalise_url(database_url)
    if "search_path" in str(url.query.get("options", "")):
        raise BackupError("DATABASE_URL names a schema (options=-csearch_path=…); backups "
                          "cover a whole database: give the lab a database of its own.")
    if not url.database:
        raise BackupError("DATABASE_URL names no database; use "
                          "postgresql://user@host:5432/dbname.")
    args = [f"--host={url.host or 'localhost'}", f"--port={url.port or 5432}"]
    if url.username:
        args.append(f"--username={url.username}")
    env = dict(os.environ)  # libpq's own settings (PGSSLROOTCERT, ~/.pgpass) still apply
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    for key, var in (("sslmode", "PGSSLMODE"), ("connect_timeout", "PGCONNECT_TIMEOUT"),
                     ("application_name", "PGAPPNAME")):
        value = url.query.get(key)
        if isinstance(value, str):
            env[var] = value
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return args, {**env, "PGDATABASE": url.database}


def _run_tool(argv: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, timeout=PG_TOOL_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} took longer than {PG_TOOL_TIMEOUT_S} s and was stopped; "
                          "nothing was kept.") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BackupError(f"{what} failed ({Path(argv[0]).name} said: "
                          f"{detail[-1] if detail else 'exit ' + str(done.returncode)}); "
                          "nothing was kept. A server newer than the client tools needs "
                          "newer tools (apt install postgresql-client-<version>).")


def _engine(database_url: str) -> Any:
    from adapters.sql.engine import check_connection, make_engine

    engine = make_engine(database_url)
    try:
        check_connection(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _snapshot_pg(database_url: str, folder: Path) -> _Snapshot:
    from sqlalchemy import text

    args, env = _pg_connection(database_url)
    dump = pg_tool("pg_dump")
    out = folder / "printcore.dump"
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ")
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            rows = conn.execute(text(
                "SELECT id, status, student_name, print_method, color FROM jobs")).all()
            _run_tool([dump, *args, "--format=custom", "--no-owner", "--no-privileges",
                       f"--snapshot={snapshot}", f"--file={out}"], env, "pg_dump")
            conn.rollback()
    finally:
        engine.dispose()
    return _Snapshot(PG_DATABASE_MEMBER, out, str(revision), _folders(rows))


def _pg_tables(engine: Any) -> list[str]:
    from sqlalchemy import text

    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY 1")).scalars().all()
        conn.rollback()
    return [str(r) for r in rows]


# --- SQLite --------------------------------------------------------------------------


def _snapshot_sqlite(database_url: str, folder: Path) -> _Snapshot:
    source = _sqlite_path(database_url)
    if not source.is_file():
        raise BackupError(f"There is no database at {source}; nothing to back up.")
    snapshot = folder / "printcore.db"
    src = sqlite3.connect(source)
    dst = sqlite3.connect(snapshot)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    with sqlite3.connect(snapshot) as conn:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        rows = conn.execute(
            "SELECT id, status, student_name, print_method, color FROM jobs").fetchall()
    conn.close()
    return _Snapshot(DATABASE_MEMBER, snapshot, str(revision), _folders(rows))


def _snapshot_jobs(db: Path) -> list[str]:
    """The storage folder (relative to the root) of every job of a SQLite database."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT id, status, student_name, print_method, color FROM jobs").fetchall()
    conn.close()
    return _folders(rows)


def _folders(rows: Any) -> list[str]:
    return [f"{JobStatus(status).folder}/{job_basename(name, method, color, job_id)}"
            for job_id, status, name, method, color in rows
            if status != JobStatus.DELETED.value]


# --- the archive ---------------------------------------------------------------------


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


def _open_tar(raw: IO[bytes]) -> tarfile.TarFile:
    """A tar writer that copies members in _CHUNK pieces (tarfile's default is 16 KiB)."""
    return tarfile.TarFile(fileobj=raw, mode="w", copybufsize=_CHUNK)


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


#: (identity of the file hashed, sha256 hex), or None when it vanished or changed meanwhile.
_Hashed = tuple[tuple[int, int, int, int], str] | None


def _hash_ahead(path: Path) -> _Hashed:
    """sha256 of ``path`` (run in a helper thread, ahead of the copy into the archive)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        before = _identity(os.fstat(handle.fileno()))
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
        after = _identity(os.fstat(handle.fileno()))
    return (before, digest) if before == after else None


def _copy_data(src: int, dst: IO[bytes], size: int) -> int:
    """Copy ``size`` bytes of file descriptor ``src`` to ``dst``: in the kernel
    (``os.sendfile``) where the system allows it between files, else in _CHUNK reads."""
    done = 0
    if hasattr(os, "sendfile"):
        try:
            while done < size:
                sent = os.sendfile(dst.fileno(), src, done, size - done)
                if sent == 0:
                    break
                done += sent
            return done
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK,
                                 errno.EOPNOTSUPP, errno.EXDEV):
                raise
    os.lseek(src, done, os.SEEK_SET)
    while done < size:
        chunk = os.read(src, min(_CHUNK, size - done))
        if not chunk:
            break
        dst.write(chunk)
        done += len(chunk)
    return done


def _add(tar: tarfile.TarFile, name: str, path: Path, entries: dict[str, dict[str, Any]],
         hashed: Future[_Hashed] | None = None) -> bool:
    """Put ``path`` into the archive as ``name``; False when it vanished meanwhile.

    With ``hashed`` (its sha256 computed ahead by ``_hash_ahead``) the bytes are copied in
    the kernel, and the file must be the one hashed (device, inode, size and mtime the same
    before and after the copy); otherwise, or when it changed since, the bytes are hashed
    as they are written. Raises OSError when a file changes while it is copied."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return False
    with handle:
        st = os.fstat(handle.fileno())
        info = tarfile.TarInfo(name)
        info.size = st.st_size
        info.mtime = int(st.st_mtime)
        info.mode = 0o600 if name == SECRET_MEMBER else 0o644
        ahead = hashed.result() if hashed is not None else None
        raw = cast("IO[bytes] | None", tar.fileobj)
        if ahead is not None and ahead[0] == _identity(st) and raw is not None:
            tar.addfile(info)  # the header only; the data follows, padded to 512 bytes
            copied = _copy_data(handle.fileno(), raw, info.size)
            blocks, remainder = divmod(info.size, tarfile.BLOCKSIZE)
            if remainder:
                raw.write(tarfile.NUL * (tarfile.BLOCKSIZE - remainder))
                blocks += 1
            tar.offset += blocks * tarfile.BLOCKSIZE
            if copied != info.size or _identity(os.fstat(handle.fileno())) != ahead[0]:
                raise OSError(f"{path} changed while it was copied")
            digest = ahead[1]
        else:
            reader = _Hashing(handle)
            tar.addfile(info, reader)
            if reader.count != info.size:
                raise OSError(f"{path} changed size while it was copied")
            digest = reader.digest.hexdigest()
    entries[name] = {"size": info.size, "sha256": digest}
    return True


#: Storage files hashed ahead of the copy, at most this many at a time.
HASH_AHEAD = 4


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not (Path(folder) == root and d == ".staging"))
        for name in sorted(files):
            path = Path(folder) / name
            yield path.relative_to(root).as_posix(), path


def _job_folder(rel: str) -> str | None:
    """``Uploaded/JaneDoe_Filament_Red_42`` for a file under a status folder, else None."""
    parts = rel.split("/")
    if len(parts) >= 2 and parts[0] in _STATUS_FOLDERS:
        return f"{parts[0]}/{parts[1]}"
    return None


def backup(database_url: str, storage_root: Path, home: Path, target: Path) -> BackupResult:
    """Write one archive of the database (SQLite or PostgreSQL) and the storage root to
    ``target`` (see the module docstring for the layout and why it is consistent).

    Raises BackupError when ``target`` exists (never overwritten), its folder is missing,
    the database is missing, pg_dump is missing or fails, or storage kept changing through
    ``ATTEMPTS`` tries; StorageError when PostgreSQL cannot be reached. OSError for a disk
    that fails while writing. Nothing is left at ``target`` unless it is complete."""
    from printcore import __version__

    target = Path(target)
    if target.exists() or target.is_symlink():
        raise BackupError(f"{target} exists already; name a new file (a backup never "
                          "overwrites one).")
    if not target.parent.is_dir():
        raise BackupError(f"The folder {target.parent} does not exist; create it first.")
    kind = "sqlite" if _is_sqlite(database_url) else "postgresql"
    if kind == "postgresql":
        _pg_connection(database_url)  # refusals before any work
        pg_tool("pg_dump")
    partial = target.with_name(target.name + ".partial")
    for attempt in range(1, ATTEMPTS + 1):
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".printcore-backup-") as tmp:
            snap = (_snapshot_sqlite if kind == "sqlite" else _snapshot_pg)(
                database_url, Path(tmp))
            wanted = set(snap.jobs)
            entries: dict[str, dict[str, Any]] = {}
            folders: set[str] = set()
            left_out: set[str] = set()
            try:
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise BackupError(f"{partial} exists: another backup is running, or one "
                                  "was interrupted (remove that file).") from None
            try:
                with (os.fdopen(fd, "wb", buffering=0) as raw, _open_tar(raw) as tar,
                      ThreadPoolExecutor(2, thread_name_prefix="backup-sha256") as pool):
                    _add(tar, snap.member, snap.path, entries)
                    kept: list[tuple[str, Path, str | None]] = []
                    if storage_root.is_dir():
                        for rel, path in _walk(storage_root):
                            job_folder = _job_folder(rel)
                            if job_folder is not None and job_folder not in wanted:
                                left_out.add(job_folder)
                            else:
                                kept.append((rel, path, job_folder))
                    ahead = [pool.submit(_hash_ahead, p) for _, p, _ in kept[:HASH_AHEAD]]
                    for index, (rel, path, job_folder) in enumerate(kept):
                        if index + HASH_AHEAD < len(kept):
                            ahead.append(pool.submit(_hash_ahead, kept[index + HASH_AHEAD][1]))
                        if _add(tar, f"storage/{rel}", path, entries, ahead[index]) and job_folder:
                            folders.add(job_folder)
                    secret = home / "secret_key"
                    if secret.is_file():
                        _add(tar, SECRET_MEMBER, secret, entries)
                    missing = wanted - folders
                    manifest = json.dumps({
                        "format": FORMAT,
                        "printcore_version": __version__,
                        "migration_revision": snap.revision,
                        "database_kind": kind,
                        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                        "jobs": len(snap.jobs),
                        "left_out": sorted(left_out),
                        "files": entries,
                    }, indent=2, sort_keys=True).encode()
                    info = tarfile.TarInfo(MANIFEST)
                    info.size = len(manifest)
                    info.mtime = int(datetime.now(UTC).timestamp())
                    tar.addfile(info, io.BytesIO(manifest))
                    raw.flush()
                    os.fsync(raw.fileno())
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            if missing:
                partial.unlink()
                continue
            os.rename(partial, target)
            _fsync_folder(target.parent)
            return BackupResult(target, len(entries) - 1 - (SECRET_MEMBER in entries),
                                target.stat().st_size, snap.revision, len(snap.jobs),
                                attempt, len(left_out))
    raise BackupError(f"Job folders kept moving while the storage was copied ({ATTEMPTS} "
                      "tries); nothing was kept. Try again at a quieter moment.")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _safe_name(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and ".." not in parts and "" not in parts


def _verify(archive: Path) -> dict[str, Any]:
    """Read the whole archive once; the manifest if every member matches it."""
    if not archive.is_file():
        raise BackupError(f"There is no backup at {archive}.")
    seen: dict[str, dict[str, Any]] = {}
    manifest: dict[str, Any] | None = None
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar:
                if not member.isfile() or not _safe_name(member.name):
                    raise BackupError(f"{archive} holds {member.name!r}, which no printcore "
                                      "backup holds; nothing was restored.")
                handle = tar.extractfile(member)
                assert handle is not None
                if member.name == MANIFEST:
                    manifest = json.loads(handle.read())
                    continue
                digest = hashlib.sha256()
                size = 0
                for chunk in iter(lambda: handle.read(_CHUNK), b""):  # noqa: B023
                    digest.update(chunk)
                    size += len(chunk)
                seen[member.name] = {"size": size, "sha256": digest.hexdigest()}
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise BackupError(f"{archive} is not a complete printcore backup ({err}); nothing "
                          "was restored. Use another copy of the backup.") from None
    if manifest is None or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"{archive} has no manifest (truncated, or not a printcore "
                          "backup); nothing was restored. Use another copy of the backup.")
    if seen != manifest["files"]:
        bad = sorted(set(seen) ^ set(manifest["files"])
                     | {n for n in seen if seen[n] != manifest["files"].get(n)})
        raise BackupError(f"{archive} does not match its manifest ({len(bad)} file(s) "
                          f"differ, first {bad[0]!r}); nothing was restored. Use another "
                          "copy of the backup.")
    db_member = {"sqlite": DATABASE_MEMBER, "postgresql": PG_DATABASE_MEMBER}.get(
        str(manifest.get("database_kind")))
    if db_member is None or db_member not in seen:
        raise BackupError(f"{archive} holds no database; nothing was restored. Use another "
                          "copy of the backup.")
    return manifest


def _home_problem(db: Path | None, storage_root: Path, home: Path) -> str | None:
    if db is not None and db.exists():
        return f"the database {db} exists"
    if storage_root.is_dir() and any(storage_root.iterdir()):
        return f"the storage folder {storage_root} is not empty"
    if home.is_dir():
        others = [p.name for p in home.iterdir() if p.name != "secret_key"]
        if others:
            return f"the home {home} holds {', '.join(sorted(others)[:3])}"
    return None


def _extract(archive: Path, manifest: dict[str, Any], staging: Path) -> None:
    with tarfile.open(archive, mode="r:") as tar:
        for member in tar:
            if member.name == MANIFEST:
                continue
            expected = manifest["files"][member.name]
            out = staging / member.name
            out.parent.mkdir(parents=True, exist_ok=True)
            handle = tar.extractfile(member)
            assert handle is not None
            digest = hashlib.sha256()
            with out.open("wb") as sink:
                for chunk in iter(lambda: handle.read(_CHUNK), b""):  # noqa: B023
                    digest.update(chunk)
                    sink.write(chunk)
            if digest.hexdigest() != expected["sha256"]:
                raise BackupError(f"{archive} changed while it was restored; nothing "
                                  "was kept. Restore again from a copy.")


def restore(archive: Path, database_url: str, storage_root: Path, home: Path) -> RestoreResult:
    """Restore a ``backup`` archive into an empty home: database, storage, secret key.

    Every checksum is verified before anything is written. Raises BackupError (nothing
    written) for a missing, truncated or altered archive, a backup of the other database
    kind, a migration revision newer than this printcore knows, a home, SQLite database
    or storage folder that is not empty (a ``secret_key`` alone, made when settings were
    read, counts as empty and is replaced by the archived one), a PostgreSQL database
    that has any table, or a pg_restore that fails (its single transaction leaves the
    database empty). StorageError when PostgreSQL cannot be reached."""
    from alembic.script import ScriptDirectory

    from adapters.sql.migrate import alembic_config, current_revision, head_revision

    archive = Path(archive)
    kind = "sqlite" if _is_sqlite(database_url) else "postgresql"
    db = _sqlite_path(database_url) if kind == "sqlite" else None
    engine = None
    if kind == "postgresql":
        _pg_connection(database_url)
        pg_tool("pg_restore")
    problem = _home_problem(db, storage_root, home)
    if problem is not None:
        raise BackupError(f"Restore needs an empty home, but {problem}; set PRINTCORE_HOME "
                          "(and PRINTCORE_STORAGE) to a new folder. Nothing was changed.")
    try:
        if kind == "postgresql":
            engine = _engine(database_url)
            tables = _pg_tables(engine)
            if tables:
                raise BackupError(
                    f"Restore needs an empty database, but {engine.url.database} has "
                    f"{len(tables)} table(s) ({', '.join(tables[:3])}); create a new one "
                    "(`createdb NAME`, or CREATE DATABASE NAME in psql) and point "
                    "DATABASE_URL at it. Nothing was changed.")
        manifest = _verify(archive)
        if manifest.get("database_kind") != kind:
            raise BackupError(
                f"This is a backup of a {manifest.get('database_kind')} database and "
                f"DATABASE_URL is {kind}: restore it into a {manifest.get('database_kind')} "
                "home" + (", then move it with `printcore db copy --to URL`"
                          if kind == "postgresql" else "") + ". Nothing was changed.")
        revision = str(manifest.get("migration_revision"))
        known = {rev.revision
                 for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
        if revision not in known:
            raise BackupError(f"This backup is at migration revision {revision!r}, newer "
                              f"than this printcore ({manifest.get('printcore_version')} "
                              "made it); install that version or later to restore it. "
                              "Nothing was changed.")
        home.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=home, prefix=".restore-"))
        try:
            _extract(archive, manifest, staging)
            storage_root.parent.mkdir(parents=True, exist_ok=True)
            restored_storage = staging / "storage"
            restored_storage.mkdir(exist_ok=True)
            if kind == "postgresql":
                args, env = _pg_connection(database_url)
                _run_tool([pg_tool("pg_restore"), *args, f"--dbname={env['PGDATABASE']}",
                           "--single-transaction", "--exit-on-error", "--no-owner",
                           "--no-privileges", str(staging / PG_DATABASE_MEMBER)],
                          env, "pg_restore")
            if storage_root.is_dir():
                storage_root.rmdir()  # empty (checked above)
            shutil.move(str(restored_storage), str(storage_root))
            if (staging / SECRET_MEMBER).is_file():
                os.replace(staging / SECRET_MEMBER, home / "secret_key")
            if db is not None:
                db.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(staging / DATABASE_MEMBER), str(db))  # last: marks it used
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if engine is None:
            from adapters.sql.engine import make_engine
            engine = make_engine(database_url)
        restored = current_revision(engine)
        if restored != revision:
            raise BackupError(f"The restored database is at migration revision {restored!r}, "
                              f"not the backup's {revision!r}; the backup is damaged. Empty "
                              "the database and storage, and restore another copy.")
    finally:
        if engine is not None:
            engine.dispose()
    files = sum(1 for n in manifest["files"] if n.startswith("storage/"))
    return RestoreResult(files, int(manifest.get("jobs", 0)), revision,
                         str(manifest.get("created_at")), kind, revision == head_revision())
