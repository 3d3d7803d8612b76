"""The inspector's process pools under a backlog: every queued file is read.

Regression for CPython gh-115634 (Python 3.11-3.13): with
``ProcessPoolExecutor(max_tasks_per_child=N)``, a worker that reaches N while files wait
in the call queue is not always replaced, and the waiting files hang until a later
submission spawns a process (bench/faults.py saw submissions held past 60 s). The
inspector now replaces its pools whole; here one worker replaced every 2 files must get
through 12 files submitted at once, and the thumbnail pool through 5 in a row. And the
checking processes run at a lower priority than the web process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from _support import FIXTURES
from adapters.web.inspection import NICE, Inspector

MODEL = FIXTURES / "models" / "HalfDonut_ascii.stl"


def copies(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        target = tmp_path / f"model-{i}.stl"
        shutil.copyfile(MODEL, target)
        out.append(target)
    return out


def test_a_backlog_of_files_is_read_across_pool_replacements(tmp_path: Path) -> None:
    inspector = Inspector(isolated=True, workers=1, files_per_process=2)
    paths = copies(tmp_path, 12)

    async def all_of_them() -> list[object]:
        return await asyncio.wait_for(
            asyncio.gather(*(inspector.model(p, ".stl") for p in paths)), timeout=120)

    try:
        infos = asyncio.run(all_of_them())
    finally:
        inspector.close()
    assert len(infos) == 12
    first = infos[0]
    assert all(info == first for info in infos)  # the same file, the same facts


def test_thumbnails_go_on_after_their_pool_is_replaced(tmp_path: Path) -> None:
    inspector = Inspector(isolated=True, thumbnails_per_process=2)
    paths = copies(tmp_path, 5)

    async def one_by_one() -> list[object]:
        return [await asyncio.wait_for(inspector.thumbnail(p, ".stl"), timeout=120)
                for p in paths]

    try:
        thumbs = asyncio.run(one_by_one())
    finally:
        inspector.close()
    assert len(thumbs) == 5


def test_the_checking_processes_run_below_the_web_process() -> None:
    """A model check is batch work: its processes run ``NICE`` steps lower, so under load
    the dashboards and queue commands get the CPU first (bench/load.py)."""
    inspector = Inspector(isolated=True, workers=1)
    try:
        theirs = asyncio.run(inspector._run(os.nice, 0))
    finally:
        inspector.close()
    assert theirs == min(os.nice(0) + NICE, 19)
