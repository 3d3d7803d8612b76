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
import subprocess
import sys
import time
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


CHILD = """
import asyncio, os, sys
from pathlib import Path
from adapters.web.inspection import Inspector
inspector = Inspector(isolated=True, workers=2)
async def main():
    await asyncio.gather(inspector.model(Path(sys.argv[1]), ".stl"),
                         inspector.model(Path(sys.argv[1]), ".stl"))
asyncio.run(main())
print(" ".join(str(pid) for pid in inspector._parsers.pool._processes), flush=True)
sys.stdin.read()  # until killed
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_checkers_end_when_the_web_process_is_killed(tmp_path: Path) -> None:
    """The web process SIGKILLed (the OOM killer, ``kill -9``): its checking processes
    end within seconds instead of staying behind with their memory."""
    (model,) = copies(tmp_path, 1)
    parent = subprocess.Popen([sys.executable, "-c", CHILD, str(model)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert pids and all(_alive(p) for p in pids)
    finally:
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)], "checkers outlived the web process"
