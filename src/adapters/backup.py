"""One-file backups of a printcore lab (database + storage root), and restoring them.

Archive: an uncompressed tar, written to ``PATH.partial`` and renamed to ``PATH`` when
complete (a crashed backup never leaves a file that looks whole)::

    database/printcore.db        SQLite, copied with the online backup API
    storage/<relative path>      every file under the storage root (``.staging`` excluded)
    home/secret_key              the embedded default key, when the home holds one
    manifest.json                last: format, printcore version, migration revision,
                                 database kind, created_at (UTC, ISO 8601) and every other
                                 member with its size (bytes) and sha256 (hex)

Consistency: the database is copied first (``sqlite3.Connection.backup``: one consistent
snapshot even while the server writes), then the storage. A move between status folders
copies, commits and then deletes, so a job of the snapshot can lose its snapshot folder
while the storage is walked; every job of the snapshot is checked for its folder and the
backup is taken again (up to ``ATTEMPTS`` times) when one is missing.

Errors: ``BackupError`` (a ValidationError: exit 1 at the command line) for a refusal with
a sentence saying what to do; nothing is written or changed when one is raised.
PostgreSQL is not supported yet (``BackupError`` says so).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import attrs

from printcore.errors import ValidationError
from printcore.requests.job import JobStatus
from printcore.requests.naming import job_basename

__all__ = ["ATTEMPTS", "BackupError", "BackupResult", "RestoreResult", "backup", "restore"]

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE_MEMBER = "database/printcore.db"
SECRET_MEMBER = "home/secret_key"
#: Backups taken again at most this many times while storage moves under them.
ATTEMPTS = 5
_CHUNK = 1 << 20


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


@attrs.frozen
class RestoreResult:
    files: int
    jobs: int
    revision: str
    created_at: str


def _sqlite_path(database_url: str) -> Path:
    if not database_url.startswith("sqlite:///"):
        raise BackupError(
            "Backups of a PostgreSQL database are not supported yet: use `pg_dump -Fc` for "
            "the database and copy the storage folder (docs/operations.md, Backup and "
            "restore)."
        )
    return Path(database_url[len("sqlite:///"):])


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


def _add(tar: tarfile.TarFile, name: str, path: Path, entries: dict[str, dict[str, Any]]) -> bool:
    """Stream ``path`` into the archive as ``name``; False when it vanished meanwhile."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return False
    with handle:
        info = tarfile.TarInfo(name)
        info.size = os.fstat(handle.fileno()).st_size
        info.mtime = int(os.fstat(handle.fileno()).st_mtime)
        info.mode = 0o600 if name == SECRET_MEMBER else 0o644
        reader = _Hashing(handle)
        tar.addfile(info, reader)
        if reader.count != info.size:
            raise OSError(f"{path} changed size while it was copied")
    entries[name] = {"size": info.size, "sha256": reader.digest.hexdigest()}
    return True


def _snapshot_jobs(db: Path) -> list[str]:
    """The storage folder (relative to the root) of every job of the database snapshot."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT id, status, student_name, print_method, color FROM jobs"
        ).fetchall()
    conn.close()
    return [f"{JobStatus(status).folder}/{job_basename(name, method, color, job_id)}"
            for job_id, status, name, method, color in rows]


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    conn.close()
    return str(row[0])


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not (Path(folder) == root and d == ".staging"))
        for name in sorted(files):
            path = Path(folder) / name
            yield path.relative_to(root).as_posix(), path


def backup(database_url: str, storage_root: Path, home: Path, target: Path) -> BackupResult:
    """Write one archive of the SQLite database and the storage root to ``target``.

    Raises BackupError when ``target`` exists (never overwritten), its folder is missing,
    the database is PostgreSQL (not supported yet) or missing, or storage kept changing
    through ``ATTEMPTS`` tries. OSError for a disk that fails while writing."""
    from printcore import __version__

    target = Path(target)
    if target.exists() or target.is_symlink():
        raise BackupError(f"{target} exists already; name a new file (a backup never "
                          "overwrites one).")
    if not target.parent.is_dir():
        raise BackupError(f"The folder {target.parent} does not exist; create it first.")
    source = _sqlite_path(database_url)
    if not source.is_file():
        raise BackupError(f"There is no database at {source}; nothing to back up.")
    partial = target.with_name(target.name + ".partial")
    for attempt in range(1, ATTEMPTS + 1):
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".printcore-backup-") as tmp:
            snapshot = Path(tmp) / "printcore.db"
            src = sqlite3.connect(source)
            dst = sqlite3.connect(snapshot)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
            revision = _revision(snapshot)
            wanted = _snapshot_jobs(snapshot)
            entries: dict[str, dict[str, Any]] = {}
            folders: set[str] = set()
            try:
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise BackupError(f"{partial} exists: another backup is running, or one "
                                  "was interrupted (remove that file).") from None
            try:
                with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
                    _add(tar, DATABASE_MEMBER, snapshot, entries)
                    if storage_root.is_dir():
                        for rel, path in _walk(storage_root):
                            if _add(tar, f"storage/{rel}", path, entries):
                                folders.add(rel.rsplit("/", 1)[0])
                    secret = home / "secret_key"
                    if secret.is_file():
                        _add(tar, SECRET_MEMBER, secret, entries)
                    missing = [w for w in wanted if w not in folders]
                    manifest = json.dumps({
                        "format": FORMAT,
                        "printcore_version": __version__,
                        "migration_revision": revision,
                        "database_kind": "sqlite",
                        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                        "jobs": len(wanted),
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
            return BackupResult(target, len(entries) - 1 - (SECRET_MEMBER in entries),
                                target.stat().st_size, revision, len(wanted), attempt)
    raise BackupError(f"Job folders kept moving while the storage was copied ({ATTEMPTS} "
                      "tries); nothing was kept. Try again at a quieter moment.")


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
    if manifest.get("database_kind") != "sqlite" or DATABASE_MEMBER not in seen:
        raise BackupError("This backup holds no SQLite database; restoring a PostgreSQL "
                          "backup is not supported yet.")
    return manifest


def _home_problem(db: Path, storage_root: Path, home: Path) -> str | None:
    if db.exists():
        return f"the database {db} exists"
    if storage_root.is_dir() and any(storage_root.iterdir()):
        return f"the storage folder {storage_root} is not empty"
    if home.is_dir():
        others = [p.name for p in home.iterdir() if p.name != "secret_key"]
        if others:
            return f"the home {home} holds {', '.join(sorted(others)[:3])}"
    return None


def restore(archive: Path, database_url: str, storage_root: Path, home: Path) -> RestoreResult:
    """Restore a ``backup`` archive into an empty home: database, storage, secret key.

    Every checksum is verified before anything is written. Raises BackupError (nothing
    written) for a missing, truncated or altered archive, a PostgreSQL database, a
    migration revision newer than this printcore knows, or a home, database or storage
    folder that is not empty (a ``secret_key`` alone, made when settings were read, counts
    as empty and is replaced by the archived one)."""
    from alembic.script import ScriptDirectory

    from adapters.sql.migrate import alembic_config

    archive = Path(archive)
    db = _sqlite_path(database_url)
    problem = _home_problem(db, storage_root, home)
    if problem is not None:
        raise BackupError(f"Restore needs an empty home, but {problem}; set PRINTCORE_HOME "
                          "to a new folder. Nothing was changed.")
    manifest = _verify(archive)
    revision = str(manifest.get("migration_revision"))
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if revision not in known:
        raise BackupError(f"This backup is at migration revision {revision!r}, newer than "
                          f"this printcore ({manifest.get('printcore_version')} made it); "
                          "install that version or later to restore it. Nothing was changed.")
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=home, prefix=".restore-"))
    try:
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
        db.parent.mkdir(parents=True, exist_ok=True)
        storage_root.parent.mkdir(parents=True, exist_ok=True)
        restored_storage = staging / "storage"
        restored_storage.mkdir(exist_ok=True)
        if storage_root.is_dir():
            storage_root.rmdir()  # empty (checked above)
        shutil.move(str(restored_storage), str(storage_root))
        if (staging / SECRET_MEMBER).is_file():
            os.replace(staging / SECRET_MEMBER, home / "secret_key")
        shutil.move(str(staging / DATABASE_MEMBER), str(db))  # last: it marks the home used
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = sum(1 for n in manifest["files"] if n.startswith("storage/"))
    return RestoreResult(files, int(manifest.get("jobs", 0)), revision,
                         str(manifest.get("created_at")))
