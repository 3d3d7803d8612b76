"""Issue 16: the sweeper killed between a deadline and its offer. Each planted claim
deadline fires once after the restart, never early, the lapsed printer is offered to the
next member once, and every notice row is delivered once. A bounded run of
bench/faults_sweep.py's ``kill`` fault (6 kills: two at a random moment around the
deadline, two pinned inside the firing sweep's transaction, two after its commit and
before its notices went out), on PostgreSQL, with ``printcore sweep`` and the Discord
bot's own sweep and delivery loops each killed and each restarting."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import psycopg

from _live import PG_DSN
from _support import service_missing

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import faults_sweep


def test_each_deadline_fires_once_after_the_sweeper_is_killed() -> None:
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as err:
        service_missing(f"PostgreSQL at {PG_DSN}: {err}")
    result = faults_sweep.run_kill(6, random.Random(16), keep_logs=False)
    assert result["problems"] == []
    assert (result["lost"], result["doubled"], result["early"]) == (0, 0, 0)
    assert result["deadlines"] == result["fired"] >= 18  # 3 planted per run, and more
    assert result["held_by_lease"] == 0
    points = result["kill_points"]
    assert points.get("inside the sweep") == 2, points  # both pinned there
    assert points.get("after commit") == 1, points  # printcore sweep, on its heartbeat
    assert result["cases"] == {f"{point}/{kind}": 1 for point in faults_sweep.KILL_POINTS
                               for kind in ("sweep->bot", "bot->sweep")}
