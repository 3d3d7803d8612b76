"""Issue 16: the sweeper killed between a deadline and its offer, and a change committed
in the middle of its sweep. Each planted claim
deadline fires once after the restart, never early, the lapsed printer is offered to the
next member once, and every notice row is delivered once. A bounded run of
bench/faults_sweep.py's ``kill`` fault (6 kills: two at a random moment around the
deadline, two pinned inside the firing sweep's transaction, two after its commit and
before its notices went out), on PostgreSQL, with ``printcore sweep`` and the Discord
bot's own sweep and delivery loops each killed and each restarting."""

from __future__ import annotations

import random
import sys
import tempfile
from datetime import UTC, datetime
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


def test_the_sweep_loop_outlives_a_change_between_its_read_and_its_write() -> None:
    """Another process's change to a printer row (a claim, a printer's report, a second
    sweeper) committed between the sweep's read and its compare-and-set write made
    ``printcore sweep`` exit with a ConcurrentChangeError traceback: no deadline fired
    until someone restarted it. Pinned here: the tickets table held while the loop has
    read the printers, the printer row changed meanwhile. The loop must go on, and the
    deadline fire once, on the next sweep."""
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as err:
        service_missing(f"PostgreSQL at {PG_DSN}: {err}")
    with tempfile.TemporaryDirectory() as tmp:
        lab = faults_sweep.Lab(Path(tmp))
        sweeper = faults_sweep.Sweeper("sweep", lab.env, Path(tmp) / "sweep.log")
        try:
            lab.top_up()
            sweeper.start()
            assert faults_sweep.wait_for(lambda: faults_sweep._swept_once(sweeper), 20, 0.1)
            before = lab.last_ids()
            name, ticket = lab.offered()[0]
            with lab.lock_conn() as holder:
                holder.execute("LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE")
                lab.plant({name: datetime.now(UTC)})
                assert faults_sweep.wait_for(
                    lambda: "tickets" in (lab.waiting_query() or ""), 5), "not pinned"
                holder.execute("UPDATE printers SET version = version + 1 WHERE name = %s",
                               (name,))
                holder.commit()
            plant = faults_sweep.Plant(name, ticket, datetime.now(UTC), after=before[0])
            fired = faults_sweep.wait_for(
                lambda: faults_sweep._lapses(lab.events_after(before[0]), plant), 10, 0.1)
            log = sweeper.log.read_text()
            assert sweeper.alive(), f"the sweep loop exited: {log[-1500:]}"
            assert len(fired) == 1, fired
            assert "changed by another process" in log
        finally:
            sweeper.stop()
            lab.close()
