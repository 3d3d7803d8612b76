"""The Bambu watcher against real MQTT brokers, with simulated printers (issue 15).

The machine's Mosquitto (127.0.0.1:1883, ``tls: false``, a unique serial per test) carries
X1 full reports, P1 partial ones, a cancelled print, a failure during PREPARE, flapping
states, malformed messages, a failing sink and a restarted watcher. A Mosquitto the test
starts itself stands for a printer that drops off the network mid-print and comes back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from _bambu.brokers import OwnBroker, require_shared
from _bambu.sim import SimPrinter, wait_until
from _bambu.sinks import RecordingSink
from adapters.bambu.watcher import Watcher, WatchSettings, WatchTarget
from adapters.printers_file import WatchedPrinter

FAST = dict(debounce=0.6, offline_after=30.0, backoff_base=0.2, backoff_cap=1.0,
            tick_seconds=0.05, pushall_gap=1.0)


def serial() -> str:
    return "SIM" + uuid.uuid4().hex[:12].upper()


@pytest.fixture
def shared() -> tuple[str, int]:
    return require_shared()


class Rig:
    """Simulated printers and watchers, all stopped at the end."""

    def __init__(self) -> None:
        self.sims: list[SimPrinter] = []
        self.watchers: list[Watcher] = []

    def sim(self, serial_: str, port: int, model: str = "X1") -> SimPrinter:
        sim = SimPrinter(serial_, port, model=model).start()
        self.sims.append(sim)
        return sim

    def watch(self, printers: list[WatchedPrinter], sink: RecordingSink,
              state_file: Path | None = None, **settings: float) -> Watcher:
        targets = [WatchTarget(printer=p, access_code="unused") for p in printers]
        watcher = Watcher(targets, sink, WatchSettings(**{**FAST, **settings}),  # type: ignore[arg-type]
                          state_file=state_file).start()
        self.watchers.append(watcher)
        return watcher

    def close(self) -> None:
        for watcher in self.watchers:
            watcher.stop()
        for sim in self.sims:
            sim.stop()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.close()


def plain(name: str, serial_: str, port: int) -> WatchedPrinter:
    return WatchedPrinter(name=name, serial=serial_, host="127.0.0.1", port=port, tls=False)


def test_x1_full_reports_make_one_print_from_start_to_finish(shared, rig: Rig) -> None:
    s = serial()
    sim = rig.sim(s, shared[1])
    sink = RecordingSink()
    watcher = rig.watch([plain("X1C-1", s, shared[1])], sink)
    sink.wait_kinds("X1C-1", ["online", "idle"])
    wait_until(lambda: sim.pushalls == 1, what="the pushall on connect")
    sim.start_print(task="5001", layers=100, minutes=50)
    sink.wait_kinds("X1C-1", ["started"])
    for layer in (2, 2, 3):  # the same layer twice: one progress, not two
        sim.set(layer_num=layer, mc_remaining_time=50 - layer, mc_percent=layer)
    sim.set(mc_percent=4)  # percent alone is no progress report
    sim.set(gcode_state="FINISH", mc_percent=100, mc_remaining_time=0, layer_num=100)
    kinds = sink.wait_kinds("X1C-1", ["finished"])
    assert kinds == ["online", "idle", "started", "progress", "progress", "finished"]
    started, finished = sink.reports[2], sink.reports[-1]
    assert started.print_key == finished.print_key == "5001"
    assert started.live.file == "benchy" and started.live.total_layers == 100
    assert finished.live.state == "FINISH" and finished.at >= started.at
    assert [r.live.layer for r in sink.reports[3:5]] == [2, 3]
    health = watcher.health()["X1C-1"]
    assert health["connected"] is True and health["state"] == "FINISH"
    assert health["last_error"] is None and health["last_report_at"]
    assert watcher.live_states()["X1C-1"].percent == 100
    assert sink.threads == {"printcore-bambu-watcher"}  # one thread calls the sink


def test_p1_partial_reports_are_merged_into_the_full_one(shared, rig: Rig) -> None:
    s = serial()
    sim = rig.sim(s, shared[1], model="P1")
    sim.fields.update(gcode_state="RUNNING", subtask_name="bracket", gcode_file="/sd/b.3mf",
                      subtask_id="7", layer_num=10, total_layer_num=80, mc_remaining_time=30)
    sink = RecordingSink()
    watcher = rig.watch([plain("P1S-1", s, shared[1])], sink)
    sink.wait_kinds("P1S-1", ["online", "started"])  # from the pushall's full answer
    sim.set(layer_num=11)  # partial: only layer_num
    sink.wait_kinds("P1S-1", ["progress"])
    progress = sink.reports[-1]
    assert progress.live.layer == 11 and progress.live.file == "bracket"
    assert progress.live.remaining_minutes == 30 and progress.print_key == "7"
    sim.set(mc_remaining_time=29)
    sim.set(gcode_state="FINISH")
    sink.wait_kinds("P1S-1", ["progress", "finished"])
    assert sink.reports[-1].print_key == "7" and sink.reports[-1].live.layer == 11
    assert sim.pushalls == 1  # once on connect; never per message
    assert watcher.live_states()["P1S-1"].state == "FINISH"


def test_idle_straight_after_running_is_cancelled(shared, rig: Rig) -> None:
    s = serial()
    sim = rig.sim(s, shared[1])
    sink = RecordingSink()
    rig.watch([plain("A1-1", s, shared[1])], sink)
    sink.wait_kinds("A1-1", ["idle"])
    sim.start_print(task="0", name="vase")  # task "0": keyed by file and start time
    sink.wait_kinds("A1-1", ["started"])
    sim.set(gcode_state="IDLE", subtask_name="", gcode_file="")
    kinds = sink.wait_kinds("A1-1", ["cancelled"])
    assert kinds == ["online", "idle", "started", "cancelled"]
    started, cancelled = sink.reports[2], sink.reports[3]
    assert started.print_key == cancelled.print_key
    assert started.print_key.startswith("/sdcard/vase.3mf@")


def test_failure_during_prepare_is_failed_without_started(shared, rig: Rig) -> None:
    s = serial()
    sim = rig.sim(s, shared[1])
    sink = RecordingSink()
    rig.watch([plain("X1C-2", s, shared[1])], sink)
    sink.wait_kinds("X1C-2", ["idle"])
    sim.set(gcode_state="PREPARE", subtask_name="clip", subtask_id="88")
    sim.set(gcode_state="FAILED", print_error=50348044, mc_print_error_code="0300-4000")
    kinds = sink.wait_kinds("X1C-2", ["failed"])
    assert kinds == ["online", "idle", "failed"]
    failed = sink.reports[-1]
    assert failed.print_key == "88" and failed.live.error_code == "0300-4000"


def test_flapping_pause_is_debounced_and_the_finish_never_lost(shared, rig: Rig) -> None:
    s = serial()
    sim = rig.sim(s, shared[1])
    sink = RecordingSink()
    rig.watch([plain("X1C-3", s, shared[1])], sink, debounce=1.5)
    sink.wait_kinds("X1C-3", ["idle"])
    sim.start_print(task="42")
    sink.wait_kinds("X1C-3", ["started"])
    for _ in range(4):  # RUNNING/PAUSE bouncing within the debounce: nothing said
        sim.set(gcode_state="PAUSE")
        sim.set(gcode_state="RUNNING")
    sim.set(gcode_state="PAUSE")  # a real pause, held
    sink.wait_kinds("X1C-3", ["paused"], timeout=5)
    sim.set(gcode_state="RUNNING")
    sink.wait_kinds("X1C-3", ["progress"])
    sim.set(gcode_state="PAUSE")
    sim.set(gcode_state="FINISH")  # ends inside the debounce: the finish still arrives
    kinds = sink.wait_kinds("X1C-3", ["finished"])
    assert kinds == ["online", "idle", "started", "paused", "progress", "finished"]
    assert all(r.print_key == "42" for r in sink.reports[2:])


def test_bad_messages_and_a_failing_sink_do_not_stop_the_watcher(shared, rig: Rig) -> None:
    s = serial()
    sim = rig.sim(s, shared[1])
    sink = RecordingSink(fail_first=2)  # "online" and "idle" raise
    watcher = rig.watch([plain("X1C-4", s, shared[1])], sink)
    wait_until(lambda: watcher.sink_errors == 2, what="two failed sink calls")
    sim.publish_raw(b"{not json")
    sim.publish_raw(b"[1, 2]")
    sim.publish_raw(b'{"print": {"gcode_state": 7, "mc_percent": "lots", "layer_num": true}}')
    sim.info_message()
    sim.start_print(task="9")
    sink.wait_kinds("X1C-4", ["started"])
    assert sink.kinds("X1C-4") == ["started"]
    assert watcher.dropped_messages == 2
    assert watcher.health()["X1C-4"]["connected"] is True


def test_a_restarted_watcher_recovers_the_running_print(shared, rig: Rig) -> None:
    s = serial()
    sim = rig.sim(s, shared[1], model="P1")
    sink = RecordingSink()
    first = rig.watch([plain("P1S-2", s, shared[1])], sink)
    sink.wait_kinds("P1S-2", ["idle"])
    sim.start_print(task="314", layers=50)
    sink.wait_kinds("P1S-2", ["started"])
    first.stop()
    sim.set(layer_num=20, mc_remaining_time=12)  # while nobody watches
    again = RecordingSink()
    rig.watch([plain("P1S-2", s, shared[1])], again)
    # the new watcher's pushall brings the full state: the same print, started again
    kinds = again.wait_kinds("P1S-2", ["online", "started"])
    assert kinds == ["online", "started"]
    assert again.reports[-1].print_key == "314" and again.reports[-1].live.layer == 20
    sim.set(gcode_state="FINISH")
    again.wait_kinds("P1S-2", ["finished"])
    assert again.reports[-1].print_key == "314"
    assert sim.pushalls == 2  # one per watcher


def test_many_printers_on_one_watcher_stay_apart(shared, rig: Rig) -> None:
    serials = [serial() for _ in range(3)]
    sims = [rig.sim(x, shared[1], model=m) for x, m in zip(serials, ("X1", "P1", "X1"), strict=True)]
    sink = RecordingSink()
    rig.watch([plain(f"P-{i}", x, shared[1]) for i, x in enumerate(serials)], sink)
    for i in range(3):
        sink.wait_kinds(f"P-{i}", ["online", "idle"])
    sims[1].start_print(task="2")
    sink.wait_kinds("P-1", ["started"])
    assert sink.kinds("P-0") == sink.kinds("P-2") == ["online", "idle"]


def test_a_printer_that_drops_off_goes_offline_and_comes_back(tmp_path: Path, rig: Rig) -> None:
    broker = OwnBroker(tmp_path / "broker").start()
    try:
        s = serial()
        sim = rig.sim(s, broker.port)
        sink = RecordingSink()
        watcher = rig.watch([plain("X1C-5", s, broker.port)], sink, debounce=1.0)
        sink.wait_kinds("X1C-5", ["online", "idle"])
        sim.start_print(task="77")
        sink.wait_kinds("X1C-5", ["started"])
        broker.stop()  # the printer is gone mid-print
        sink.wait_kinds("X1C-5", ["offline"], timeout=10)
        assert watcher.health()["X1C-5"]["connected"] is False
        assert watcher.live_states()["X1C-5"].state == "OFFLINE"
        sim.stop()
        rig.sims.remove(sim)
        broker.start()  # back on the same port, the print finished meanwhile
        sim = rig.sim(s, broker.port)
        sim.fields.update(gcode_state="FINISH", subtask_id="77", subtask_name="benchy",
                          mc_percent=100)
        kinds = sink.wait_kinds("X1C-5", ["online", "finished"], timeout=15)
        assert kinds == ["online", "idle", "started", "offline", "online", "finished"]
        assert sink.reports[-1].print_key == "77"
        assert watcher.health()["X1C-5"]["connected"] is True
    finally:
        broker.stop()


def test_a_short_drop_is_debounced(tmp_path: Path, rig: Rig) -> None:
    broker = OwnBroker(tmp_path / "broker").start()
    try:
        s = serial()
        sink = RecordingSink()
        watcher = rig.watch([plain("X1C-6", s, broker.port)], sink, debounce=8.0,
                            backoff_base=0.1, backoff_cap=0.2)
        sim = rig.sim(s, broker.port)
        sim.publish_full()
        sink.wait_kinds("X1C-6", ["online", "idle"])
        broker.stop()
        wait_until(lambda: not watcher.health()["X1C-6"]["connected"], what="the drop")
        broker.start()
        wait_until(lambda: watcher.health()["X1C-6"]["connected"], timeout=10,
                   what="the reconnect")
        sim.stop()
        rig.sims.remove(sim)
        sim = rig.sim(s, broker.port)
        sim.publish_full()
        wait_until(lambda: watcher.live_states()["X1C-6"].reported_at
                   > sink.reports[-1].at, what="a report after the drop")
        import time
        time.sleep(0.5)
        assert sink.kinds("X1C-6") == ["online", "idle"]  # no offline/online pair
    finally:
        broker.stop()


def test_a_silent_printer_goes_offline_after_offline_after(shared, rig: Rig) -> None:
    s = serial()
    sim = rig.sim(s, shared[1])
    sink = RecordingSink()
    rig.watch([plain("X1C-7", s, shared[1])], sink, offline_after=1.5)
    sink.wait_kinds("X1C-7", ["online", "idle"])
    sink.wait_kinds("X1C-7", ["offline"], timeout=5)  # connected, but nothing said
    sim.publish_full()
    assert sink.wait_kinds("X1C-7", ["online"]) == ["online", "idle", "offline", "online"]


def test_a_restarted_watcher_keeps_the_key_of_a_print_the_printer_does_not_name(
        shared, tmp_path: Path, rig: Rig) -> None:
    s = serial()
    sim = rig.sim(s, shared[1], model="P1")
    state = tmp_path / "watcher-state.json"
    sink = RecordingSink()
    first = rig.watch([plain("A1-2", s, shared[1])], sink, state_file=state)
    sink.wait_kinds("A1-2", ["idle"])
    sim.start_print(task="0", name="lid")
    key = sink.wait_for(lambda rs: rs[-1].kind == "started")[-1].print_key
    assert key.startswith("/sdcard/lid.3mf@")
    wait_until(state.exists, what="the state file")
    first.stop()
    again = RecordingSink()
    rig.watch([plain("A1-2", s, shared[1])], again, state_file=state)
    again.wait_kinds("A1-2", ["online", "started"])
    assert again.reports[-1].print_key == key  # the same print, the same key
    sim.set(gcode_state="FINISH")
    again.wait_kinds("A1-2", ["finished"])
    assert again.reports[-1].print_key == key
    wait_until(lambda: json.loads(state.read_text()) == {}, what="the state emptied")


def test_a_reconnect_never_asks_for_a_full_report_sooner_than_the_gap(tmp_path: Path,
                                                                      rig: Rig) -> None:
    import time

    broker = OwnBroker(tmp_path / "broker").start()
    try:
        s = serial()
        sim = rig.sim(s, broker.port, model="P1")
        sink = RecordingSink()
        watcher = rig.watch([plain("P1S-9", s, broker.port)], sink, pushall_gap=5.0,
                            backoff_base=0.1, backoff_cap=0.2)
        wait_until(lambda: sim.pushalls == 1, what="the first pushall")
        asked = time.monotonic()
        broker.stop()
        wait_until(lambda: not watcher.health()["P1S-9"]["connected"], what="the drop")
        broker.start()
        wait_until(lambda: watcher.health()["P1S-9"]["connected"], timeout=10,
                   what="the reconnect")
        wait_until(lambda: sim.client.is_connected(), timeout=10, what="the sim back")
        time.sleep(max(0.0, asked + 4.0 - time.monotonic()))
        assert sim.pushalls == 1  # reconnected, but the gap is not over
        wait_until(lambda: sim.pushalls == 2, timeout=6, what="the deferred pushall")
        assert time.monotonic() - asked >= 5.0
    finally:
        broker.stop()
