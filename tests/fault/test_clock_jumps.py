"""Issue 16: the sweeper's wall clock jumping during open claim windows (an NTP step, the
lab's DST nights). A real ``printcore sweep`` and the Discord bot's sweep and delivery
loops run under libfaketime, which moves their realtime clock (not the monotonic one)
while they run; a bounded run of bench/faults_sweep.py's ``clock`` fault, one run of each
case: a forward step, a backward step and back, 2026-11-01 across 02:00 CDT -> 01:00 CST
with a step back across it, 2027-03-14 across 02:00 CST -> 03:00 CDT with the minute the
lab is closed then. No window lapses before its deadline by the clock that fires it, none
lapses or is offered twice, no offer comes while the lab is closed, claim deadlines count
open time (checked against stretches written out by hand), every notice goes out once.

Needs libfaketime (Debian package ``faketime``, installed by .ci/run) and ``cc``: fails
under CI=true without them, skips elsewhere."""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import psycopg

from _live import PG_DSN
from _support import service_missing

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import faults_sweep


def test_no_window_fires_early_or_twice_when_the_clock_jumps() -> None:
    if faults_sweep.libfaketime() is None:
        service_missing("libfaketime (apt-get install faketime)")
    if shutil.which("cc") is None:
        service_missing("a C compiler (cc) for the sleep shim")
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as err:
        service_missing(f"PostgreSQL at {PG_DSN}: {err}")
    result = faults_sweep.run_clock(4, random.Random(16), keep_logs=False)
    assert result["problems"] == []
    assert (result["lost"], result["doubled"], result["early"]) == (0, 0, 0)
    assert result["deadlines"] == result["fired"] >= 12  # 3 planted per run, and more
    assert result["runs_not_settled_in_10_s"] == 0
    assert result["cases"] == {"forward/sweep": 1, "backward/sweep": 1, "dst_fall/bot": 1,
                               "dst_spring/bot": 1}
    runs = result["per_run"]
    assert ": +" in runs[0] and ": -" in runs[1], runs  # a step forward, then back
