"""The ``watcher`` readiness check (issue 15): present only when the printers file names
watched printers, failing without a heartbeat and when a watched
printer is not connected (naming it and the watcher's last error); passing when every
watched printer is connected. On SQLite and PostgreSQL (the heartbeat is a row)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from adapters.health import Readiness
from adapters.heartbeat import DatabaseHeartbeats


def _readiness(engine: Engine, tmp_path: Path, watched: tuple[str, ...]) -> Readiness:
    return Readiness(engine, tmp_path, watched_printers=watched,
                     heartbeat_max_age_seconds=60)


def test_no_watched_printer_no_check(sql_engine: Engine, tmp_path: Path) -> None:
    names = [c.name for c in _readiness(sql_engine, tmp_path, ()).run().checks]
    assert "watcher" not in names


def test_the_watcher_check_follows_the_heartbeat_and_each_printer(
        sql_engine: Engine, tmp_path: Path) -> None:
    readiness = _readiness(sql_engine, tmp_path, ("X1C-1", "P1S-1"))
    check = readiness.watcher()
    assert not check.ok and "No heartbeat from the printer watcher" in check.detail
    assert "printcore watch" in (check.action or "")
    beats = DatabaseHeartbeats(sql_engine)
    beats.beat("watcher", {"printers": {
        "X1C-1": {"connected": True, "last_report_at": None, "state": "IDLE",
                  "last_error": None},
        "P1S-1": {"connected": False, "last_report_at": None, "state": None,
                  "last_error": "certificate mismatch: expected AB:CD…, presented 12:34…"}}})
    check = readiness.watcher()
    assert not check.ok
    assert "cannot reach: P1S-1 (certificate mismatch: expected AB:CD…" in check.detail
    assert "X1C-1" not in check.detail
    beats.beat("watcher", {"printers": {
        name: {"connected": True, "last_report_at": None, "state": "RUNNING",
               "last_error": None} for name in ("X1C-1", "P1S-1")}})
    check = readiness.watcher()
    assert check.ok and "All 2 watched printer(s) connected" in check.detail
    assert [c.name for c in readiness.run().checks].count("watcher") == 1
