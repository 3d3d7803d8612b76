"""Reading uploaded files in a separate process.

Parsing a student's mesh (trimesh) or a sliced archive can take hundreds of megabytes
for a large model, and it is the part of printcore that touches hostile input. It runs
in a small process pool (spawned, recycled every few files), so the web process's
memory stays flat and a crash in a parser fails one upload, not the server.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from adapters.meshes import ArchiveLimits, ModelInfo, inspect_model, read_slice_estimate
from printcore.errors import UnsupportedFileError
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


class Inspector:
    """``await inspector.model(path, ext)`` / ``await inspector.sliced(path, ext)``.

    ``isolated=False`` parses in a thread of this process instead (tests, tiny setups).
    Raises UnsupportedFileError as the readers do, and also when the parser process dies.
    """

    def __init__(
        self, limits: ArchiveLimits | None = None, isolated: bool = True, workers: int = 1
    ) -> None:
        self.limits = limits or ArchiveLimits()
        self.isolated = isolated
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                max_tasks_per_child=8,
            )
        return self._pool

    async def _run(self, func, *args):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        if not self.isolated:
            return await asyncio.to_thread(func, *args)
        try:
            return await loop.run_in_executor(self._executor(), func, *args)
        except BrokenProcessPool:
            self._pool = None
            raise UnsupportedFileError(
                "The file could not be read (the reader stopped); check the file and try again."
            ) from None

    async def model(self, path: Path, extension: str) -> ModelInfo:
        result: ModelInfo = await self._run(_model_then_collect, path, extension, self.limits)
        return result

    async def sliced(self, path: Path, extension: str) -> SliceEstimate:
        result: SliceEstimate = await self._run(_sliced_then_collect, path, extension, self.limits)
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
