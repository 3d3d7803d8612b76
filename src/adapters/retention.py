"""Retention's files: the run's zip (:class:`ZipArchiver`), the jobs' folders
(:class:`StorageFolders`) and the archive folder's listing (:func:`list_archives`).

Zip layout (one file per run, ``printcore-archive-YYYYMMDDTHHMMSSZ.zip``, self-contained)::

    manifest.json                 {"format": 1, "kind": "printcore retention archive",
                                   "created_at", "created_by", "older_than_days", "cutoff",
                                   "job_ids", "jobs": [{"id", "status", "folder"}],
                                   "entries": [{"name", "bytes", "sha256"}]}
    jobs/<id>/job.json            the ``jobs`` row (datetimes ISO 8601 UTC; files, payments)
    jobs/<id>/events.json         the job's ``events`` rows, oldest first
    jobs/<id>/outbox.json         the job's ``outbox`` rows (emails and notices)
    jobs/<id>/metadata.json       the folder's metadata.json, when it has one
    jobs/<id>/files/<name>        every other regular file of the job's storage folder

The zip is written as ``.<name>.partial`` in the archive folder, flushed to disk, reopened
and checked entry by entry against the manifest's SHA-256s (and nothing more nor less
than the manifest lists), and only then renamed to its name. Any failure removes the
partial file and raises StorageError saying why; the caller has removed nothing then.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import attrs

from adapters.files.store import METADATA_NAME, LocalFileStore
from printcore.errors import StorageError
from printcore.requests.job import Job
from printcore.requests.retention import JobRecord, WrittenArchive

__all__ = ["ARCHIVE_FORMAT", "ArchiveFile", "StorageFolders", "ZipArchiver", "list_archives",
           "verify_archive"]

ARCHIVE_FORMAT = 1
MANIFEST = "manifest.json"
PREFIX = "printcore-archive-"
_CHUNK = 1 << 20


def _files_of(folder: Path) -> Iterator[Path]:
    """Regular files under ``folder`` (recursively, links not followed), sorted."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


@attrs.define
class StorageFolders:
    """The jobs' folders in the storage root (``LocalFileStore`` layout, read here)."""

    store: LocalFileStore

    def measure(self, job: Job) -> tuple[int, int]:
        """(bytes, files) of the job's folder under its status; (0, 0) when missing."""
        files = list(_files_of(self.store.folder(job)))
        return sum(f.stat().st_size for f in files), len(files)

    def remove(self, job: Job) -> None:
        """Remove the job's folder (nothing when it is gone). Raises StorageError."""
        folder = self.store.folder(job)
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise StorageError(f"Could not remove {folder}: {err.strerror or err}; "
                               "`printcore storage check` reports it as an orphan folder "
                               "of a removed job: delete it by hand.") from err


def _why(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "the disk is full"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the folder is not writable"
    return err.strerror or str(err)


def _copy_hashed(source: IO[bytes], target: Any) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def verify_archive(path: Path) -> dict[str, Any]:
    """Reopen the zip at ``path`` and check every entry's SHA-256 and size against its
    manifest, and that it holds exactly the manifest's entries. Returns the manifest;
    raises StorageError naming the first entry that differs."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read(MANIFEST))
            listed = {e["name"]: e for e in manifest["entries"]}
            present = set(zf.namelist()) - {MANIFEST}
            if present != set(listed):
                raise StorageError(f"The archive {path.name} does not hold what its manifest "
                                   f"lists ({sorted(present ^ set(listed))[:3]}).")
            for name, entry in listed.items():
                with zf.open(name) as handle:
                    size, digest = _copy_hashed(handle, _Null())
                if (size, digest) != (entry["bytes"], entry["sha256"]):
                    raise StorageError(f"The archive {path.name} is damaged: {name} does not "
                                       "match its checksum.")
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as err:
        raise StorageError(f"The archive {path.name} cannot be read back: {err}.") from err
    return dict(manifest)


class _Null:
    def write(self, data: bytes) -> int:
        return len(data)


@attrs.define
class ZipArchiver:
    """Writes retention zips into ``directory`` (which must exist and be writable)."""

    directory: Path
    store: LocalFileStore
    now: Callable[[], datetime] = attrs.field(default=lambda: datetime.now(UTC))

    def _target(self) -> Path:
        stamp = self.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        n = 1
        while True:
            name = f"{PREFIX}{stamp}{'' if n == 1 else f'-{n}'}.zip"
            if not (self.directory / name).exists():
                return self.directory / name
            n += 1

    def write(self, records: Sequence[JobRecord], manifest: dict[str, Any]) -> WrittenArchive:
        """See :class:`printcore.requests.retention.RetentionArchiver`."""
        folder = Path(self.directory)
        if not folder.is_dir():
            raise StorageError(f"The archive folder {folder} does not exist; create it (or "
                               "choose another) and run again. Nothing was removed.")
        target = self._target()
        partial = folder / f".{target.name}.partial"
        try:
            entries = self._write_zip(partial, records, manifest)
            verify_archive(partial)
            os.rename(partial, target)
            _fsync_dir(folder)
        except OSError as err:
            partial.unlink(missing_ok=True)
            raise StorageError(f"Cannot write the archive in {folder}: {_why(err)}. "
                               "Nothing was removed.") from err
        except StorageError as err:
            partial.unlink(missing_ok=True)
            raise StorageError(f"{err.message} Nothing was removed.") from err
        digest = hashlib.sha256()
        with target.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return WrittenArchive(target.name, str(target), target.stat().st_size, entries,
                              digest.hexdigest())

    def _write_zip(self, path: Path, records: Sequence[JobRecord],
                   manifest: dict[str, Any]) -> int:
        listed: list[dict[str, Any]] = []
        jobs: list[dict[str, Any]] = []
        with zipfile.ZipFile(path, "x", compression=zipfile.ZIP_DEFLATED,
                             allowZip64=True) as zf:

            stamp = self.now().astimezone(UTC).timetuple()[:6]

            def put(name: str, source: IO[bytes]) -> None:
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w", force_zip64=True) as out:
                    size, digest = _copy_hashed(source, out)
                listed.append({"name": name, "bytes": size, "sha256": digest})

            def put_json(name: str, value: Any) -> None:
                from io import BytesIO

                put(name, BytesIO(json.dumps(value, indent=1, sort_keys=True,
                                             ensure_ascii=False).encode()))

            for r in records:
                base = f"jobs/{r.job.id}"
                job_folder = self.store.folder(r.job)
                put_json(f"{base}/job.json", r.row)
                put_json(f"{base}/events.json", r.events)
                put_json(f"{base}/outbox.json", r.outbox)
                for file in _files_of(job_folder):
                    relative = file.relative_to(job_folder).as_posix()
                    name = (f"{base}/{METADATA_NAME}" if relative == METADATA_NAME
                            else f"{base}/files/{relative}")
                    with file.open("rb") as handle:
                        put(name, handle)
                jobs.append({"id": r.job.id, "status": r.job.status,
                             "folder": job_folder.relative_to(self.store.root).as_posix()})
            zf.writestr(MANIFEST, json.dumps(
                {"format": ARCHIVE_FORMAT, "kind": "printcore retention archive", **manifest,
                 "jobs": jobs, "entries": listed}, indent=1, sort_keys=True,
                ensure_ascii=False))
        with path.open("rb+") as synced:
            os.fsync(synced.fileno())
        return len(listed)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@attrs.frozen
class ArchiveFile:
    """An archive in the archive folder: ``name``, ``bytes``, ``modified_at`` (UTC)."""

    name: str
    bytes: int
    modified_at: datetime


def list_archives(directory: Path) -> list[ArchiveFile]:
    """The retention zips in ``directory``, newest first ([] when it does not exist)."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob(f"{PREFIX}*.zip"):
        if path.is_file():
            info = path.stat()
            found.append(ArchiveFile(path.name, info.st_size,
                                     datetime.fromtimestamp(info.st_mtime, UTC)))
    return sorted(found, key=lambda a: (a.modified_at, a.name), reverse=True)
