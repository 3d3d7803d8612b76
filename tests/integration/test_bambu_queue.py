"""The seed's flow end to end (issue 15): a simulated X1 on the machine's Mosquitto, the
watcher, and the real queue (``QueueService.printer_reported`` on SQLite through
``entrypoints.bootstrap``).

IDLE → the head of the queue is offered the printer → claims it → the printer reports
RUNNING, which meets the start window → FINISH closes the print with the printer's own
end time (the actual duration is known) → the next member is offered the printer. A
member who also says "started" after the printer did changes nothing (counted once), and
a restarted watcher that sees the same print again changes nothing either.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from _bambu.brokers import require_shared
from _bambu.sim import SimPrinter, wait_until
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.settings import Settings, load_settings
from entrypoints.watch_cli import start_watcher
from printcore.errors import PrintcoreError
from printcore.queue.printer_status import PrinterReport

FAST = dict(debounce=0.5, backoff_base=0.2, backoff_cap=1.0, tick_seconds=0.05,
            pushall_gap=1.0)


class Outcomes:
    """The queue as the sink, remembering what each report did."""

    def __init__(self, container: Container) -> None:
        self.queue = container.queue
        self.seen: list[tuple[str, str]] = []

    def printer_reported(self, report: PrinterReport) -> Any:
        outcome = self.queue.printer_reported(report)
        self.seen.append((report.kind, str(outcome)))
        return outcome


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Container, SimPrinter, Settings]]:
    host, port = require_shared()
    serial = "SIMQ" + uuid.uuid4().hex[:11].upper()
    home = tmp_path / "home"
    home.mkdir()
    (home / "printers.yaml").write_text(
        "printers:\n  - name: X1C-1\n    label: watched\n"
        f"    serial: {serial}\n    host: {host}\n    port: {port}\n    tls: false\n"
        "  - name: X1C-2\n    label: member-reported\n")
    settings = load_settings({"PRINTCORE_HOME": str(home)}, env_file=None)
    container = bootstrap(settings)
    sim = SimPrinter(serial, port).start()
    yield container, sim, settings
    sim.stop()
    container.close()


def ticket(container: Container, member: str):  # type: ignore[no-untyped-def]
    return next(t for t in container.queue.history(50) + container.queue.myjobs(member)
                if t.member == member)


def test_idle_ping_claim_running_finish_next_member(lab) -> None:  # type: ignore[no-untyped-def]
    container, sim, settings = lab
    q = container.queue
    q.set_in_service("X1C-2", False, _staff())  # one printer: the flow is on X1C-1
    q.join("ada", "Ada", "bracket", timedelta(minutes=30))
    q.join("bob", "Bob", "vase", timedelta(minutes=20))
    sink = Outcomes(container)
    watcher = start_watcher(settings, sink, {"PRINTCORE_BAMBU_ACCESS_CODE_X1C_1": "x"}, **FAST)
    assert watcher is not None
    try:
        wait_until(lambda: any(k == "idle" for k, _ in sink.seen), what="the idle report")
        assert q.myjobs("ada")[0].status == "offered"
        q.claim("ada", "X1C-1")
        sim.start_print(task="4242", minutes=25)
        wait_until(lambda: any(k == "started" for k, _ in sink.seen), what="started")
        assert ("started", "started") in sink.seen  # it met the start window
        ada = q.myjobs("ada")[0]
        assert ada.status == "printing" and ada.started_at is not None
        started_at = ada.started_at
        try:  # the member's own "started" after the printer's: counted once
            q.report_started("ada")
        except PrintcoreError:
            pass
        assert q.myjobs("ada")[0].started_at == started_at
        assert q.myjobs("ada")[0].status == "printing"
        time.sleep(1.1)
        sim.set(layer_num=60, mc_remaining_time=12)
        wait_until(lambda: any(k == "progress" for k, _ in sink.seen), what="progress")
        sim.set(gcode_state="FINISH", mc_percent=100, mc_remaining_time=0)
        wait_until(lambda: any(k == "finished" for k, _ in sink.seen), what="finished")
        assert ("finished", "closed") in sink.seen
        done = next(t for t in q.history(10) if t.member == "ada")
        assert done.status == "done" and done.outcome == "finished"
        assert done.ended_at is not None and done.ended_at > started_at
        assert done.actual_minutes is not None and done.actual_minutes <= 1
        assert q.myjobs("bob")[0].status == "offered"  # the next member is pinged
        assert q.myjobs("bob")[0].printer == "X1C-1"
    finally:
        watcher.stop()
    # a restarted watcher sees the finished print again: nothing changes
    again = Outcomes(container)
    watcher = start_watcher(settings, again, {"PRINTCORE_BAMBU_ACCESS_CODE_X1C_1": "x"}, **FAST)
    try:
        wait_until(lambda: any(k == "finished" for k, _ in again.seen), what="re-finished")
        assert ("finished", "repeat") in again.seen
        assert q.myjobs("bob")[0].status == "offered"
    finally:
        watcher.stop()


def _staff():  # type: ignore[no-untyped-def]
    from printcore.events import Actor

    return Actor.staff("Lab Staff", "test")


def test_printcore_watch_runs_until_ctrl_c_and_beats_its_health(lab) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys

    from adapters.heartbeat import DatabaseHeartbeats

    container, sim, settings = lab
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTCORE_")}
    env.update(PRINTCORE_HOME=str(settings.home), PRINTCORE_BAMBU_ACCESS_CODE_X1C_1="x",
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "watch"], env=env,
                            cwd=settings.home, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        beats = DatabaseHeartbeats(container.engine)

        wait_until(lambda: beats.last("watcher") is not None, timeout=30,
                   what="the watcher's heartbeat")
        assert set(beats.last("watcher").data["printers"]) == {"X1C-1"}
        live = {p.name: p for p in container.queue.printers()}
        wait_until(lambda: {p.name: p for p in container.queue.printers()}["X1C-1"].live_state
                   == "IDLE", timeout=10, what="the watcher's first report")
        sim.start_print(task="77")
        wait_until(lambda: {p.name: p for p in container.queue.printers()}["X1C-1"].live_state
                   == "RUNNING", timeout=10, what="the live state in the database")
        assert live["X1C-2"].live_state is None
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "X1C-1: 127.0.0.1:1883" in out and "plain MQTT (tls: false)" in out
    assert "X1C-2: member-reported" in out and "printcore watch: stopped" in out
    assert "Traceback" not in out
