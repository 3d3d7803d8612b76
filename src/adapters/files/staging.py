"""Receiving an upload onto disk, chunk by chunk, with a size cap and a running SHA-256.

The staging folder lies inside the storage root, so adopting a staged file into a job's
folder is a rename on the same disk, not a second copy.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO

__all__ = ["StagedUpload", "StagingArea", "UploadTooLarge"]


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
        self._file: BinaryIO | None = open(path, "xb")  # noqa: SIM115 - closed in finish/abort

    def write(self, chunk: bytes) -> None:
        """Raises UploadTooLarge (after removing the partial file) past the limit."""
        if self._file is None:
            raise ValueError("upload already finished")
        self.size_bytes += len(chunk)
        if self.size_bytes > self.limit_bytes:
            self.abort()
            raise UploadTooLarge(self.limit_bytes)
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        """Close the file; returns the SHA-256 hex digest."""
        if self._file is not None:
            self._file.close()
            self._file = None
        return self._hash.hexdigest()

    def abort(self) -> None:
        """Close and remove the partial file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class StagingArea:
    """Creates staged uploads under ``folder`` with generated names (``<uuid>.part``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def open(self, limit_bytes: int) -> StagedUpload:
        self.folder.mkdir(parents=True, exist_ok=True)
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
