"""From Bambu states to queue reports (issue 15): :class:`PrinterTracker`, pure.

Examples for each rule of the module's table, then properties over random sequences of
messages, pauses of the clock and lost connections: terminal changes are never lost nor
doubled, ``started`` is said once per print, ``paused`` only for a PAUSE that lasted the
debounce, ``online``/``offline`` alternate.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.bambu.report import ParsedReport
from adapters.bambu.tracker import PrinterTracker
from printcore.queue.printer_status import REPORT_KINDS, PrinterReport

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
DEBOUNCE = timedelta(seconds=5)


class Feed:
    """Drives one tracker with a clock; ``kinds`` are all reports so far."""

    def __init__(self, **kw: Any) -> None:
        self.t = PrinterTracker("X1C-1", debounce=kw.pop("debounce", DEBOUNCE),
                                offline_after=kw.pop("offline_after", timedelta(seconds=60)))
        self.now = T0
        self.reports: list[PrinterReport] = []
        self.t.on_connected(self.now)

    def msg(self, **changes: Any) -> list[str]:
        out = self.t.on_message(ParsedReport(is_print=True, changes=changes), self.now)
        self.reports += out
        return [r.kind for r in out]

    def wait(self, seconds: float) -> list[str]:
        self.now += timedelta(seconds=seconds)
        out = self.t.tick(self.now)
        self.reports += out
        return [r.kind for r in out]

    def drop(self) -> None:
        self.t.on_disconnected(self.now)

    @property
    def kinds(self) -> list[str]:
        return [r.kind for r in self.reports]


def running(**more: Any) -> dict[str, Any]:
    return {"gcode_state": "RUNNING", "subtask_id": "11", "subtask_name": "benchy",
            "layer": 1, "total_layers": 100, "remaining_minutes": 60, **more}


def test_first_contact_idle_is_online_then_idle() -> None:
    f = Feed()
    assert f.msg(gcode_state="IDLE") == ["online", "idle"]
    assert f.msg(gcode_state="IDLE") == []
    assert f.reports[-1].live.state == "IDLE" and f.reports[-1].at == T0


def test_a_whole_print_idle_prepare_running_progress_finish() -> None:
    f = Feed()
    f.msg(gcode_state="IDLE")
    assert f.msg(gcode_state="PREPARE", subtask_id="11", subtask_name="benchy") == []
    f.wait(30)
    assert f.msg(**running()) == ["started"]
    assert f.msg(**running(layer=1)) == []  # nothing changed
    assert f.msg(**running(layer=2)) == ["progress"]
    assert f.msg(**running(layer=2, remaining_minutes=58)) == ["progress"]
    assert f.msg(**running(layer=2, remaining_minutes=58, percent=3)) == []
    f.wait(3600)  # a report a minute keeps it online; here the clock jumped: offline
    assert f.kinds[-1] == "offline"
    assert f.msg(gcode_state="FINISH") == ["online", "finished"]
    keys = {r.print_key for r in f.reports if r.kind in ("started", "progress", "finished")}
    assert keys == {"11"}
    assert f.msg(gcode_state="FINISH") == []
    assert f.msg(gcode_state="IDLE") == ["idle"]


def test_running_after_finish_or_failed_is_a_new_start() -> None:
    f = Feed()
    f.msg(**running())
    f.msg(gcode_state="FINISH")
    assert f.msg(**running(subtask_id="12")) == ["started"]
    f.msg(gcode_state="FAILED")
    assert f.msg(**running(subtask_id="13")) == ["started"]
    assert [r.print_key for r in f.reports if r.kind == "started"] == ["11", "12", "13"]


def test_idle_straight_after_running_or_pause_is_cancelled() -> None:
    f = Feed()
    f.msg(**running())
    assert f.msg(gcode_state="IDLE") == ["cancelled"]
    assert f.reports[-1].print_key == "11"
    f.msg(**running(subtask_id="12"))
    f.msg(gcode_state="PAUSE")
    assert f.msg(gcode_state="IDLE") == ["cancelled"]  # the pending pause is dropped
    f.wait(10)
    assert "paused" not in f.kinds


def test_failed_during_prepare_without_started() -> None:
    f = Feed()
    f.msg(gcode_state="IDLE")
    f.msg(gcode_state="PREPARE", subtask_id="31")
    assert f.msg(gcode_state="FAILED", error_code="0300-4000") == ["failed"]
    assert f.reports[-1].print_key == "31" and f.reports[-1].live.error_code == "0300-4000"
    assert "started" not in f.kinds


def test_prepare_then_idle_is_idle_not_cancelled() -> None:
    f = Feed()
    f.msg(gcode_state="IDLE")
    f.msg(gcode_state="PREPARE")
    assert f.msg(gcode_state="IDLE") == ["idle"]


def test_a_pause_is_said_after_the_debounce_at_its_own_time() -> None:
    f = Feed()
    f.msg(**running())
    f.wait(1)
    paused_at = f.now
    assert f.msg(gcode_state="PAUSE") == []
    assert f.wait(4) == []
    assert f.wait(1) == ["paused"]
    assert f.reports[-1].at == paused_at and f.reports[-1].print_key == "11"
    assert f.msg(gcode_state="PAUSE") == []
    assert f.msg(gcode_state="RUNNING") == ["progress"]  # printing again


def test_pause_flapping_within_the_debounce_says_nothing() -> None:
    f = Feed()
    f.msg(**running())
    for _ in range(10):
        f.msg(gcode_state="PAUSE")
        f.wait(1)
        f.msg(gcode_state="RUNNING")
        f.wait(1)
    f.wait(30)
    assert f.kinds == ["online", "started"]


def test_a_finish_inside_the_debounce_is_never_lost() -> None:
    f = Feed()
    f.msg(**running())
    f.msg(gcode_state="PAUSE")
    f.wait(1)
    assert f.msg(gcode_state="FINISH") == ["finished"]
    f.wait(30)
    assert f.kinds == ["online", "started", "finished"]


def test_first_contact_with_a_running_print_reports_started() -> None:
    """A restarted watcher: the print it finds is started (the sink is idempotent)."""
    f = Feed()
    assert f.msg(**running(layer=50)) == ["online", "started"]
    assert f.reports[-1].print_key == "11" and f.reports[-1].live.layer == 50
    g = Feed()
    assert g.msg(gcode_state="PAUSE", subtask_id="11") == ["online", "started"]
    assert g.wait(6) == ["paused"]


def test_first_contact_with_a_finished_print_reports_it() -> None:
    f = Feed()
    assert f.msg(gcode_state="FINISH", subtask_id="11") == ["online", "finished"]
    assert f.reports[-1].print_key == "11"


def test_prints_without_an_id_are_keyed_by_file_and_first_sight() -> None:
    f = Feed()
    f.msg(gcode_state="IDLE", subtask_id="0", task_id="0")
    f.wait(10)
    seen = f.now
    f.msg(gcode_state="PREPARE", gcode_file="/sdcard/cube.gcode")
    f.wait(20)
    f.msg(gcode_state="RUNNING")
    assert f.reports[-1].print_key == f"/sdcard/cube.gcode@{seen.isoformat()}"
    f.msg(gcode_state="FINISH")
    assert f.reports[-1].print_key == f"/sdcard/cube.gcode@{seen.isoformat()}"


def test_a_new_task_id_while_running_is_a_new_print() -> None:
    f = Feed()
    f.msg(**running())
    assert f.msg(**running(subtask_id="99")) == ["started"]


def test_a_short_drop_is_unsaid_and_a_long_one_is_offline_at_its_time() -> None:
    f = Feed()
    f.msg(gcode_state="IDLE")
    f.drop()
    f.wait(3)
    f.t.on_connected(f.now)
    f.msg(gcode_state="IDLE")
    f.wait(10)
    assert f.kinds == ["online", "idle"]
    lost = f.now
    f.drop()
    assert f.wait(4) == []
    assert f.wait(2) == ["offline"]
    assert f.reports[-1].at == lost and f.reports[-1].live.state == "OFFLINE"
    assert f.t.live().state == "OFFLINE"
    assert f.wait(100) == []  # said once
    f.t.on_connected(f.now)
    assert f.msg(gcode_state="IDLE") == ["online"]


def test_silence_is_offline_after_offline_after() -> None:
    f = Feed(offline_after=timedelta(seconds=60))
    f.msg(gcode_state="IDLE")
    assert f.wait(59) == []
    assert f.wait(1) == ["offline"]
    assert f.reports[-1].at == T0 + timedelta(seconds=60)


def test_a_non_print_message_keeps_it_online() -> None:
    f = Feed(offline_after=timedelta(seconds=60))
    f.msg(gcode_state="IDLE")
    f.wait(50)
    f.t.on_message(ParsedReport(is_print=False), f.now)
    assert f.wait(50) == []


def test_unknown_states_change_no_print() -> None:
    f = Feed()
    f.msg(**running())
    assert f.msg(gcode_state="UNKNOWN") == []
    assert f.msg(gcode_state="INIT") == []
    assert f.msg(gcode_state="RUNNING") == []  # still the same print
    assert f.t.live().state == "RUNNING"


def test_bad_timers_are_refused() -> None:
    with pytest.raises(ValueError):
        PrinterTracker("x", debounce=timedelta(seconds=-1))
    with pytest.raises(ValueError):
        PrinterTracker("x", offline_after=timedelta(0))


# -- properties ---------------------------------------------------------------------------

STATES = ["IDLE", "PREPARE", "SLICING", "RUNNING", "PAUSE", "FINISH", "FAILED", "INIT",
          "UNKNOWN"]
steps = st.lists(st.one_of(
    st.tuples(st.just("msg"), st.sampled_from(STATES), st.integers(0, 3),
              st.integers(0, 3), st.sampled_from(["0", "a", "b"])),
    st.tuples(st.just("partial"), st.integers(0, 3)),
    st.tuples(st.just("wait"), st.floats(0, 12)),
    st.tuples(st.just("drop")),
    st.tuples(st.just("connect")),
), max_size=60)


@settings(max_examples=1500, deadline=None)
@given(steps, st.sampled_from([0.0, 2.0, 5.0]))
def test_reports_follow_the_rules_for_any_sequence(seq: list[tuple[Any, ...]],
                                                   debounce: float) -> None:
    f = Feed(debounce=timedelta(seconds=debounce), offline_after=timedelta(seconds=30))
    phase: str | None = None  # the model: the last print-driving state
    open_key: str | None = None
    messages: list[tuple[datetime, str | None]] = []  # (time, state) of each message
    for step in seq:
        before = len(f.reports)
        if step[0] == "msg":
            _, state, layer, remaining, task = step
            if (state in ("PREPARE", "SLICING", "RUNNING", "PAUSE") and task != "0"
                    and open_key in ("a", "b") and task != open_key):
                open_key = None  # the printer names another print: the open one is gone
            f.msg(gcode_state=state, layer=layer, remaining_minutes=remaining,
                  subtask_id=task)
            messages.append((f.now, state))
        elif step[0] == "partial":
            f.msg(layer=step[1])
            messages.append((f.now, None))
        elif step[0] == "wait":
            f.wait(step[1])
        elif step[0] == "drop":
            f.drop()
        else:
            f.t.on_connected(f.now)
        new = f.reports[before:]
        kinds = [r.kind for r in new]
        assert all(k in REPORT_KINDS for k in kinds)
        if step[0] == "msg" and state in ("IDLE", "PREPARE", "SLICING", "RUNNING", "PAUSE",
                                          "FINISH", "FAILED"):
            ends = [k for k in kinds if k in ("finished", "failed", "cancelled")]
            # a terminal change is said at once, exactly once
            if state in ("FINISH", "FAILED") and phase not in ("FINISH", "FAILED"):
                assert ends == ["finished" if state == "FINISH" else "failed"]
            elif state == "IDLE" and open_key is not None:  # e.g. after RUNNING/PAUSE
                assert ends == ["cancelled"]
            else:
                assert ends == []
            if state in ("RUNNING", "PAUSE") and phase in (None, "IDLE", "FINISH", "FAILED"):
                assert "started" in kinds
            phase = state
        for r in new:
            if r.kind == "started":
                assert r.print_key is not None and r.print_key != open_key
                open_key = r.print_key
            elif r.kind in ("progress", "paused"):
                assert r.print_key == open_key is not None
            elif r.kind in ("finished", "failed", "cancelled"):
                assert open_key is None or r.print_key == open_key
                open_key = None
            if r.kind == "paused":  # the PAUSE lasted the debounce: no RUNNING meanwhile
                later = [s for t, s in messages if r.at < t <= r.at + f.t.debounce]
                assert "RUNNING" not in later and f.now - r.at >= f.t.debounce
    contact = [k for k in f.kinds if k in ("online", "offline")]
    assert contact == ["online", "offline"] * (len(contact) // 2) + ["online"] * (len(contact) % 2)
    assert [r.at for r in f.reports if r.kind != "paused" and r.kind != "offline"] == sorted(
        r.at for r in f.reports if r.kind != "paused" and r.kind != "offline")


def test_a_remembered_key_is_kept_for_the_same_file_on_first_contact() -> None:
    first = Feed()
    first.msg(gcode_state="RUNNING", subtask_id="0", gcode_file="/sd/a.3mf")
    kept = first.t.open_print()
    assert kept is not None and kept[0].startswith("/sd/a.3mf@") and kept[1] == "/sd/a.3mf"
    again = Feed()
    again.now += timedelta(minutes=5)
    again.t.remembered = kept
    assert again.msg(gcode_state="RUNNING", subtask_id="0", gcode_file="/sd/a.3mf") == [
        "online", "started"]
    assert again.reports[-1].print_key == kept[0]
    again.msg(gcode_state="FINISH")
    assert again.reports[-1].print_key == kept[0]
    assert again.t.open_print() is None and again.t.remembered is None
    other = Feed()
    other.t.remembered = kept
    other.msg(gcode_state="RUNNING", subtask_id="0", gcode_file="/sd/b.3mf")
    assert other.reports[-1].print_key != kept[0]  # another file: another print
    named = Feed()
    named.msg(**running())
    assert named.t.open_print() is None  # the printer's own id needs no keeping
