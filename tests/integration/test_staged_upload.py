"""``StagedUpload.feed``: the web process's uploads hashed and written in their own thread.

Real files in a temporary folder; the full disk is ``/dev/full`` (every write fails with
ENOSPC), the slow disk a pipe nobody reads yet. Bad inputs tried: an upload past its
limit, a write that fails (full disk) while more chunks wait, ``write`` after ``feed``,
abort mid-stream, a reader that outruns the writer (memory stays bounded).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path

import pytest

from adapters.files.staging import PENDING_BYTES, StagingArea, UploadTooLarge
from printcore.errors import InsufficientStorageError

CHUNK = 64 * 1024


def chunks(total: int, seed: int = 7) -> list[bytes]:
    """Distinct bytes per chunk, so a chunk written twice or out of order changes the hash."""
    out, n = [], 0
    while n * CHUNK < total:
        out.append(hashlib.sha256(f"{seed}-{n}".encode()).digest() * (CHUNK // 32))
        n += 1
    return out


def test_fed_chunks_are_written_in_order_with_their_sha256(tmp_path: Path) -> None:
    parts = chunks(20 * 1024 * 1024)
    upload = StagingArea(tmp_path).open(limit_bytes=10**9)

    async def receive() -> str:
        for part in parts:
            upload.feed(part)
            await upload.wait_for_room()
        return await asyncio.to_thread(upload.finish)

    digest = asyncio.run(receive())
    body = b"".join(parts)
    assert digest == hashlib.sha256(body).hexdigest()
    assert upload.path.read_bytes() == body
    assert upload.size_bytes == len(body)
    assert not [t for t in threading.enumerate() if t.name == "staged-upload"]


def test_a_slow_disk_holds_the_reader_back_at_the_bound(tmp_path: Path) -> None:
    """The writer's file is a pipe read only after a pause: the reader's ``wait_for_room``
    must hold it, with no more than ``PENDING_BYTES`` (+ one chunk) waiting."""
    upload = StagingArea(tmp_path).open(limit_bytes=10**9)
    read_end, write_end = os.pipe()
    upload._file = os.fdopen(write_end, "wb", buffering=0)  # the slow disk
    received = bytearray()
    seen_pending: list[int] = []
    gate = threading.Event()

    def drain() -> None:
        gate.wait()
        while data := os.read(read_end, 1 << 20):
            received.extend(data)

    reader = threading.Thread(target=drain)
    reader.start()
    parts = chunks(3 * PENDING_BYTES)

    async def receive() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, gate.set)
        for part in parts:
            upload.feed(part)
            seen_pending.append(upload._pending_bytes)
            await upload.wait_for_room()
        await asyncio.to_thread(upload.finish)

    asyncio.run(receive())
    reader.join(10)
    os.close(read_end)
    assert bytes(received) == b"".join(parts)
    assert max(seen_pending) <= PENDING_BYTES + CHUNK
    assert max(seen_pending) > PENDING_BYTES // 2  # the pause did make it wait


def test_past_the_limit_the_partial_file_is_removed(tmp_path: Path) -> None:
    upload = StagingArea(tmp_path).open(limit_bytes=3 * CHUNK)
    for part in chunks(3 * CHUNK):
        upload.feed(part)
    with pytest.raises(UploadTooLarge):
        upload.feed(b"x")
    assert not upload.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_in_the_writer_thread_reaches_the_reader(tmp_path: Path) -> None:
    upload = StagingArea(tmp_path).open(limit_bytes=10**9)
    upload._file.close()  # type: ignore[union-attr]
    upload._file = open("/dev/full", "wb", buffering=0)  # noqa: SIM115 - ENOSPC on write

    async def receive() -> None:
        for part in chunks(2 * PENDING_BYTES):
            upload.feed(part)
            await upload.wait_for_room()
        await asyncio.to_thread(upload.finish)

    with pytest.raises(InsufficientStorageError):
        asyncio.run(receive())
    assert not upload.path.exists()
    with pytest.raises(ValueError, match="finished"):
        upload.feed(b"more")


def test_abort_mid_stream_ends_the_thread_and_removes_the_file(tmp_path: Path) -> None:
    upload = StagingArea(tmp_path).open(limit_bytes=10**9)
    for part in chunks(PENDING_BYTES):
        upload.feed(part)
    upload.abort()
    upload.abort()  # idempotent
    assert not upload.path.exists()
    assert not [t for t in threading.enumerate() if t.name == "staged-upload"]


def test_write_is_refused_once_the_upload_is_fed(tmp_path: Path) -> None:
    upload = StagingArea(tmp_path).open(limit_bytes=10**9)
    upload.feed(b"a" * 10)
    with pytest.raises(ValueError, match="feed"):
        upload.write(b"b")
    assert upload.size_bytes == 10
    assert upload.finish() == hashlib.sha256(b"a" * 10).hexdigest()

