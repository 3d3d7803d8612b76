"""``printcore sweep`` (the loop) keeps running when its database connection is cut
mid-statement (issue 16: a PostgreSQL restart made it exit with code 2, so no deadline fired until
someone restarted it). Here its backends are ended with ``pg_terminate_backend`` while it
loops: it says so on stderr, goes on, and the next sweep fires a claim window that fell
due meanwhile. PostgreSQL only (SQLite has no connections to cut)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from _live import PG_DSN

APP = "pc_sweeper_under_test"


def _q(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "queue", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("fault_home", ["postgresql"], indirect=True)
def test_the_sweep_loop_outlives_cut_connections(fault_home: dict[str, str]) -> None:
    env = {**fault_home, "PRINTCORE_SWEEP_SECONDS": "1"}
    env["DATABASE_URL"] += f"&application_name={APP}"
    env.pop("DISCORD_TOKEN", None)
    _q(env, "join", "ann", "bracket", "1h")  # offered X1C-1 at once (starter printers)
    _q(env, "join", "bob", "gear", "1h")
    _q(env, "join", "cat", "hinge", "1h")
    _q(env, "join", "dan", "nut", "1h")  # queued: the three printers are offered
    schema = env["DATABASE_URL"].rsplit("search_path%3D", 1)[1].split("&", 1)[0]
    sweeper = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "sweep"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        time.sleep(4)  # a few sweeps, nothing due
        # Hold the printers table so the next sweep waits inside its first statement,
        # then end the sweeper's connection there: a statement cut mid-way, as a restart
        # does (an idle pooled connection would only be replaced by the pool's ping).
        with psycopg.connect(PG_DSN) as holder:
            holder.execute(f'LOCK TABLE "{schema}".printers IN ACCESS EXCLUSIVE MODE')
            time.sleep(2.5)
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                cut = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = %s AND state = 'active'", (APP,)).fetchone()[0]
            holder.rollback()
        assert cut == 1  # the sweeper, waiting in its sweep
        time.sleep(3)
        assert sweeper.poll() is None, "the sweep loop exited after its connections were cut"
        # Ann's window is due 10 minutes after the offer: pretend it passed by moving the
        # stored deadline, and the running loop must fire it.
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'UPDATE "{schema}".printers SET claim_deadline = %s '
                         "WHERE holder = 'ann'", (datetime.now(UTC) - timedelta(seconds=1),))
        deadline = time.monotonic() + 30
        status = ""
        while time.monotonic() < deadline:
            status = _q(env, "status")
            if "to dan" in status.split("queue:")[0]:
                break
            time.sleep(1)
        printers = status.split("queue:")[0]
        assert "to dan" in printers, status
        assert sweeper.poll() is None
    finally:
        os.killpg(sweeper.pid, signal.SIGINT)
        try:
            out, err = sweeper.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(sweeper.pid, signal.SIGKILL)
            out, err = sweeper.communicate()
    assert "1 offered, 1 missed" in out, out + err
    assert "the database is not usable now" in err, err
