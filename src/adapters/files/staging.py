"""Receiving an upload onto disk, chunk by chunk, with a size cap and a running SHA-256.

The staging folder lies inside the storage root, so adopting a staged file into a job's
folder is a rename on the same disk, not a second copy.

A full disk (``ENOSPC``, or ``EDQUOT`` for a quota) while a staged file is created,
written or closed removes the partial file and raises ``InsufficientStorageError``
(HTTP 507); other ``OSError``s are raised as they are, after the same removal.
"""

from __future__ import annotations

import errno
import hashlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO

from printcore.errors import InsufficientStorageError

__all__ = ["StagedUpload", "StagingArea", "UploadTooLarge", "is_disk_full"]

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
    """One upload being written: ``write(chunk)`` then ``finish()`` or ``abort()``."""

    def __init__(self, path: Path, limit_bytes: int) -> None:
        self.path = path
        self.limit_bytes = limit_bytes
        self.size_bytes = 0
        self._hash = hashlib.sha256()
        try:
            self._file: BinaryIO | None = open(path, "xb")  # noqa: SIM115 - closed in finish/abort
        except OSError as err:
            if is_disk_full(err):  # no room even for the empty file (inodes on a tmpfs)
                raise InsufficientStorageError() from err
            raise

    def write(self, chunk: bytes) -> None:
        """Raises UploadTooLarge past the limit, InsufficientStorageError when the disk is
        full (both after removing the partial file)."""
        if self._file is None:
            raise ValueError("upload already finished")
        self.size_bytes += len(chunk)
        if self.size_bytes > self.limit_bytes:
            self.abort()
            raise UploadTooLarge(self.limit_bytes)
        self._hash.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as err:
            self.abort()
            if is_disk_full(err):
                raise InsufficientStorageError() from err
            raise

    def finish(self) -> str:
        """Close the file (its last buffered bytes are written then); returns the SHA-256
        hex digest. Raises InsufficientStorageError (partial file removed) when those
        bytes do not fit."""
        if self._file is not None:
            handle, self._file = self._file, None
            try:
                handle.close()
            except OSError as err:
                self.abort()
                if is_disk_full(err):
                    raise InsufficientStorageError() from err
                raise
        return self._hash.hexdigest()

    def abort(self) -> None:
        """Close and remove the partial file (idempotent; never raises for a close that
        fails on a full disk: the file is removed all the same)."""
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
