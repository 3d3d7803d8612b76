"""Reading uploaded files in a separate process.

Parsing a student's mesh (trimesh) or a sliced archive can take hundreds of megabytes
for a large model, and it is the part of printcore that touches hostile input. It runs
in a small process pool (spawned, replaced every few dozen files), so the web process's
memory stays flat and a crash in a parser fails one upload, not the server.

The pools are replaced whole (:class:`_RecycledPool`) rather than with
``ProcessPoolExecutor(max_tasks_per_child=…)``: on Python 3.11 to 3.13 a worker that
reaches that limit while files are queued is not always replaced (CPython gh-115634), and
the queued uploads then wait until a later upload happens to spawn one. Under load this
held submissions for over a minute (bench/faults.py, docs/benchmarks.md).

Thumbnails (:meth:`Inspector.thumbnail`, :meth:`Inspector.plate_image`) run in a second
pool of one spawned process, so a slow drawing never holds up an upload's check. Each
has a time limit: the worker stops itself (``SIGALRM``, see
:mod:`adapters.meshes.thumbnails`), and should it not, the whole thumbnail pool is
killed and made anew at the next call.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from adapters.meshes import ArchiveLimits, ModelInfo, inspect_model, read_slice_estimate
from adapters.meshes.thumbnails import (
    MAX_RENDER_FACES,
    THUMBNAIL_SIZE,
    TIME_LIMIT,
    Thumbnail,
    ThumbnailError,
    make_thumbnail,
    stop_after,
)
from adapters.meshes.thumbnails import plate_image as read_plate_image
from printcore.errors import BusyError, UnsupportedFileError
from printcore.slicing import SliceEstimate

__all__ = ["Inspector"]


def _model_then_collect(path: Path, extension: str, limits: ArchiveLimits) -> ModelInfo:
    try:
        return inspect_model(path, extension, limits)
    finally:
        gc.collect()  # a large mesh leaves cyclic garbage (~1.5 GB for 200 MB): free it now


def _sliced_then_collect(path: Path, extension: str, limits: ArchiveLimits) -> SliceEstimate:
    try:
        return read_slice_estimate(path, extension, limits)
    finally:
        gc.collect()


def _thumbnail_then_collect(
    path: Path, extension: str, size: int, max_faces: int, limits: ArchiveLimits,
    time_limit: float,
) -> Thumbnail:
    try:
        return make_thumbnail(path, extension, size, max_faces, limits, time_limit)
    finally:
        gc.collect()


def _plate_then_collect(path: Path, limits: ArchiveLimits, time_limit: float) -> bytes | None:
    with stop_after(time_limit):
        return read_plate_image(path, limits)


#: How much lower than the web process the checking processes run (``os.nice``): a model
#: check is batch work, so under load the dashboards and queue commands get the CPU
#: first (bench/load.py, docs/benchmarks.md).
NICE = 10


def _lower_priority() -> None:
    """Worker initializer: run this process ``NICE`` steps below its parent, and end it
    when its parent dies: a web process killed outright (``SIGKILL``, the OOM killer)
    would otherwise leave its checkers running, each holding up to 0.5 GB."""
    try:
        os.nice(NICE)
    except OSError:  # not allowed here: the check still runs, at normal priority
        pass
    _die_with_parent()


def _die_with_parent() -> None:
    """Start a daemon thread that ends this process within a second of its parent's
    death (its parent id changes). ``prctl(PR_SET_PDEATHSIG)`` would follow the parent
    *thread* that spawned the worker, which is not always the process's main thread."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class _RecycledPool:
    """A spawned ``ProcessPoolExecutor`` of ``workers`` processes, replaced by a new one
    after ``files`` submissions. The old pool is shut down without waiting: the files it
    was given still run to the end, then its processes exit."""

    def __init__(self, workers: int, files: int) -> None:
        self.workers = workers
        self.files = files
        self.pool: ProcessPoolExecutor | None = None
        self._given = 0

    def executor(self) -> ProcessPoolExecutor:
        """The pool for the next file (a new one after ``files`` of them)."""
        if self.pool is not None and self._given >= self.files:
            self.pool.shutdown(wait=False)
            self.pool = None
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_lower_priority)
            self._given = 0
        self._given += 1
        return self.pool

    def forget(self) -> None:
        """Drop a broken pool (the next file gets a new one)."""
        self.pool = None

    def kill(self) -> None:
        """End the pool's processes now, even in the middle of a file."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        # ProcessPoolExecutor has no public way to stop a running task: kill its workers.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


#: Extra seconds the web process waits beyond a thumbnail's own time limit (a process
#: being spawned, trimesh and numpy imported) before it kills the worker.
THUMBNAIL_GRACE_SECONDS = 10.0


class Inspector:
    """``await inspector.model(path, ext)`` / ``await inspector.sliced(path, ext)``.

    ``isolated=False`` parses in a thread of this process instead (tests, tiny setups).
    ``workers`` parser processes; the pool is replaced after ``files_per_process`` files
    per worker (a new process re-imports the app, ~1 s, so only now and then: each runs
    ``gc.collect()`` after every file, so memory does not creep), the thumbnail pool after
    ``thumbnails_per_process``. Raises UnsupportedFileError as the readers do, and also
    when the parser process dies.

    ``max_waiting`` (0 = no limit) bounds the files waiting for a parser: the web app
    calls :meth:`check_room` before it reads an upload's body.
    """

    def __init__(
        self, limits: ArchiveLimits | None = None, isolated: bool = True, workers: int = 1,
        files_per_process: int = 64, thumbnails_per_process: int = 8, max_waiting: int = 0,
    ) -> None:
        self.limits = limits or ArchiveLimits()
        self.isolated = isolated
        self.workers = workers
        self.max_waiting = max_waiting
        #: Files given to the parsers and not yet answered (queued or being read).
        self.waiting = 0
        #: A running mean of the seconds one file takes from hand-over to answer.
        self._seconds_per_file = 1.0
        self._parsers = _RecycledPool(workers, files_per_process * workers)
        self._thumbnails = _RecycledPool(1, thumbnails_per_process)

    def _executor(self) -> ProcessPoolExecutor:
        return self._parsers.executor()

    def check_room(self) -> None:
        """Raises BusyError (``retry_after``: the seconds the files already waiting should
        take) when ``max_waiting`` files already wait for a parser."""
        if self.max_waiting and self.waiting >= self.max_waiting:
            seconds = math.ceil(self.waiting * self._seconds_per_file / max(self.workers, 1))
            raise BusyError(
                f"The lab's server is checking {self.waiting} uploaded files right now, so "
                f"yours was not taken (nothing was kept). Please send it again in about "
                f"{max(seconds, 5)} seconds.", max(seconds, 5), reason="uploads_waiting",
                details={"waiting": self.waiting, "retry_after_seconds": max(seconds, 5)})

    async def _run(self, func, *args):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        if not self.isolated:
            return await asyncio.to_thread(func, *args)
        self.waiting += 1
        started = time.monotonic()
        try:
            return await loop.run_in_executor(self._executor(), func, *args)
        except BrokenProcessPool:
            self._parsers.forget()
            raise UnsupportedFileError(
                "The file could not be read (the reader stopped); check the file and try again."
            ) from None
        finally:
            self.waiting -= 1
            # Seconds per file as the queue sees them, divided back by those it waited on.
            took = (time.monotonic() - started) / max(1, math.ceil(
                (self.waiting + 1) / max(self.workers, 1)))
            self._seconds_per_file += 0.2 * (took - self._seconds_per_file)

    async def model(self, path: Path, extension: str) -> ModelInfo:
        result: ModelInfo = await self._run(_model_then_collect, path, extension, self.limits)
        return result

    async def sliced(self, path: Path, extension: str) -> SliceEstimate:
        result: SliceEstimate = await self._run(_sliced_then_collect, path, extension, self.limits)
        return result

    async def thumbnail(
        self, path: Path, extension: str, *, size: int = THUMBNAIL_SIZE,
        max_faces: int = MAX_RENDER_FACES, time_limit: float = TIME_LIMIT,
    ) -> Thumbnail:
        """The model's thumbnail (see :func:`adapters.meshes.thumbnails.make_thumbnail`).

        ``time_limit`` in seconds. Raises ThumbnailError when it takes longer, when the
        maker process dies, or as the maker does; UnsupportedFileError as the readers do.
        """
        result: Thumbnail = await self._run_limited(
            _thumbnail_then_collect, time_limit, path, extension, size, max_faces,
            self.limits, time_limit,
        )
        return result

    async def plate_image(self, path: Path, *, time_limit: float = 10.0) -> bytes | None:
        """The PNG a 3MF / .gcode.3mf carries (:func:`adapters.meshes.thumbnails.plate_image`)."""
        result: bytes | None = await self._run_limited(
            _plate_then_collect, time_limit, path, self.limits, time_limit
        )
        return result

    def _thumbnail_executor(self) -> ProcessPoolExecutor:
        return self._thumbnails.executor()

    async def _run_limited(self, func, time_limit: float, *args):  # type: ignore[no-untyped-def]
        if not self.isolated:
            # A thread cannot be killed: the maker's own checks between steps stop it.
            return await asyncio.to_thread(func, *args)
        loop = asyncio.get_running_loop()
        async with self._thumbnail_turn(loop):  # one at a time: the timer starts on our turn
            pool = self._thumbnail_executor()
            try:
                return await asyncio.wait_for(
                    loop.run_in_executor(pool, func, *args),
                    timeout=time_limit + THUMBNAIL_GRACE_SECONDS,
                )
            except TimeoutError:
                self._kill_thumbnail_pool()
                raise ThumbnailError(
                    f"making the preview took longer than {time_limit:g} s, so it was stopped"
                ) from None
            except BrokenProcessPool:
                self._kill_thumbnail_pool()
                raise ThumbnailError(
                    "the preview maker stopped (it ran out of memory or crashed)"
                ) from None

    def _thumbnail_turn(self, loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
        """A lock per event loop (an asyncio lock belongs to one loop)."""
        held: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = getattr(
            self, "_thumbnail_lock", None)
        if held is None or held[0] is not loop:
            held = (loop, asyncio.Lock())
            self._thumbnail_lock = held
        return held[1]

    def _kill_thumbnail_pool(self) -> None:
        """End the thumbnail worker now, even in the middle of a drawing."""
        self._thumbnails.kill()

    def close_thumbnails(self) -> None:
        """Stop the thumbnail worker (call it with :meth:`close`)."""
        self._kill_thumbnail_pool()

    def close(self) -> None:
        self.close_thumbnails()
        self._parsers.close()
