"""Receiving an upload onto disk, chunk by chunk, with a size cap and a running SHA-256.

The staging folder lies inside the storage root, so adopting a staged file into a job's
folder is a rename on the same disk, not a second copy.

A full disk (``ENOSPC``, or ``EDQUOT`` for a quota) while a staged file is created,
written or closed removes the partial file and raises ``InsufficientStorageError``
(HTTP 507); other ``OSError``s are raised as they are, after the same removal.

Two ways to write: ``write(chunk)`` hashes and writes in the caller's thread (the CLI,
files read from disk); ``feed(chunk)`` hands the chunk to one thread per upload that
hashes and writes it, for the web process, whose event loop then goes on reading the
socket (and serving other requests) while SHA-256 runs: hashlib and file writes release
the GIL. ``await wait_for_room()`` bounds what waits for that thread
(``PENDING_BYTES``), and ``finish()`` waits for it. bench/bench_upload_baseline.py measures
both against a bare streaming endpoint (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import hashlib
import os
import threading
import uuid
from pathlib import Path
from typing import BinaryIO, NoReturn

from printcore.errors import InsufficientStorageError

__all__ = ["StagedUpload", "StagingArea", "UploadTooLarge", "is_disk_full"]

#: Bytes handed to an upload's writer thread and not yet written, past which
#: ``wait_for_room`` makes the reader wait (it resumes at half of it).
PENDING_BYTES = 4 * 1024 * 1024

#: The errnos of a full file system or quota.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(err: BaseException) -> bool:
    """True for an ``OSError`` that says the file system (or the user's quota) is full."""
    return isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS


class UploadTooLarge(Exception):
    """The upload passed ``limit_bytes``; the partial file has already been removed."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"upload larger than {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


class StagedUpload:
    """One upload being written: ``write(chunk)`` (or ``feed(chunk)``, see the module),
    then ``finish()`` or ``abort()``."""

    def __init__(self, path: Path, limit_bytes: int) -> None:
        self.path = path
        self.limit_bytes = limit_bytes
        self.size_bytes = 0
        self._hash = hashlib.sha256()
        # feed(): chunks waiting for the writer thread, their bytes, its first error.
        self._pending: collections.deque[bytes | None] = collections.deque()
        self._pending_bytes = 0
        self._changed = threading.Condition()
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None
        try:
            self._file: BinaryIO | None = open(path, "xb")  # noqa: SIM115 - closed in finish/abort
        except OSError as err:
            if is_disk_full(err):  # no room even for the empty file (inodes on a tmpfs)
                raise InsufficientStorageError() from err
            raise

    def _count(self, chunk: bytes) -> None:
        if self._file is None:
            raise ValueError("upload already finished")
        self.size_bytes += len(chunk)
        if self.size_bytes > self.limit_bytes:
            self.abort()
            raise UploadTooLarge(self.limit_bytes)

    def _raise_for(self, err: OSError) -> NoReturn:
        """After a failed write or close: remove the partial file, raise what it means."""
        self.abort()
        if is_disk_full(err):
            raise InsufficientStorageError() from err
        raise err

    def write(self, chunk: bytes) -> None:
        """Hash and write ``chunk`` now, in this thread. Raises UploadTooLarge past the
        limit, InsufficientStorageError when the disk is full (both after removing the
        partial file)."""
        if self._writer is not None:
            raise ValueError("this upload is fed to its writer thread: use feed()")
        self._count(chunk)
        self._hash.update(chunk)
        assert self._file is not None
        try:
            self._file.write(chunk)
        except OSError as err:
            self._raise_for(err)

    def feed(self, chunk: bytes) -> None:
        """Hand ``chunk`` to this upload's writer thread (started on the first call) and
        return at once. Raises UploadTooLarge past the limit, and what an earlier chunk's
        write raised (InsufficientStorageError for a full disk), after removing the
        partial file. Call ``wait_for_room`` between reads to bound the memory held."""
        self._count(chunk)
        if self._error is not None:
            self._fail()
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_fed, name="staged-upload",
                                            daemon=True)
            self._writer.start()
        with self._changed:
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
            self._changed.notify_all()

    async def wait_for_room(self) -> None:
        """Wait (off the event loop) while more than ``PENDING_BYTES`` are waiting for the
        writer thread, until half of them are written or it failed."""
        if self._pending_bytes > PENDING_BYTES:
            await asyncio.to_thread(self._wait_pending, PENDING_BYTES // 2)
        if self._error is not None:
            self._fail()

    def _wait_pending(self, at_most: int) -> None:
        with self._changed:
            self._changed.wait_for(
                lambda: self._pending_bytes <= at_most or self._error is not None
                or self._writer is None or not self._writer.is_alive())

    def _write_fed(self) -> None:
        file, digest = self._file, self._hash
        assert file is not None
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending))
                chunk = self._pending.popleft()
            if chunk is None:
                return
            try:
                digest.update(chunk)
                file.write(chunk)
            except BaseException as err:  # handed to the reader (feed, wait_for_room)
                with self._changed:
                    self._error = err
                    self._pending.clear()
                    self._pending_bytes = 0
                    self._changed.notify_all()
                return
            with self._changed:
                self._pending_bytes -= len(chunk)
                self._changed.notify_all()

    def _stop_writer(self) -> None:
        """Let the writer thread write what it holds and end; wait for it."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with self._changed:
                self._pending.append(None)
                self._changed.notify_all()
            writer.join()

    def _fail(self) -> NoReturn:
        err = self._error
        assert err is not None
        if isinstance(err, OSError):
            self._raise_for(err)
        self.abort()
        raise err

    def finish(self) -> str:
        """Write what is still waiting for the writer thread (blocking: from a coroutine,
        run it in a thread), close the file (its last buffered bytes are written then);
        returns the SHA-256 hex digest. Raises InsufficientStorageError (partial file
        removed) when those bytes do not fit."""
        self._stop_writer()
        if self._error is not None:
            self._fail()
        if self._file is not None:
            handle, self._file = self._file, None
            try:
                handle.close()
            except OSError as err:
                self._raise_for(err)
        return self._hash.hexdigest()

    def abort(self) -> None:
        """Close and remove the partial file (idempotent; never raises for a close that
        fails on a full disk: the file is removed all the same)."""
        writer, self._writer = self._writer, None
        if writer is not None:  # drop what waits, let the thread end its current chunk
            with self._changed:
                self._pending.clear()
                self._pending_bytes = 0
                self._pending.append(None)
                self._changed.notify_all()
            writer.join()
        if self._file is not None:
            handle, self._file = self._file, None
            try:
                handle.close()
            except OSError:
                pass
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class StagingArea:
    """Creates staged uploads under ``folder`` with generated names (``<uuid>.part``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def open(self, limit_bytes: int) -> StagedUpload:
        """A new staged upload. Raises InsufficientStorageError when not even an empty
        file can be created."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            if is_disk_full(err):
                raise InsufficientStorageError() from err
            raise
        return StagedUpload(self.folder / f"{uuid.uuid4().hex}.part", limit_bytes)

    def sweep(self, older_than_seconds: float = 24 * 3600) -> int:
        """Remove abandoned partial uploads (e.g. after a crash); returns how many."""
        import time

        removed = 0
        cutoff = time.time() - older_than_seconds
        for item in self.folder.glob("*.part"):
            try:
                if item.stat().st_mtime < cutoff:
                    os.unlink(item)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
