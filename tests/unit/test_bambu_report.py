"""Parsing and merging Bambu ``device/{serial}/report`` messages (issue 15)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.bambu.report import PrintFields, ReportError, parse_report

X1_FULL = {"print": {
    "command": "push_status", "msg": 0, "sequence_id": "2001", "gcode_state": "RUNNING",
    "mc_percent": 37, "mc_remaining_time": 58, "subtask_name": "Benchy_PLA",
    "gcode_file": "/data/Metadata/plate_1.gcode", "layer_num": 61, "total_layer_num": 240,
    "print_error": 0, "mc_print_error_code": "0", "subtask_id": "1127334", "task_id":
    "1127333", "nozzle_temper": 219.9, "bed_temper": 55.0, "wifi_signal": "-51dBm",
    "lights_report": [{"node": "chamber_light", "mode": "on"}], "ams": {"ams": []}}}


def test_a_full_x1_report_gives_every_field() -> None:
    parsed = parse_report(json.dumps(X1_FULL).encode())
    assert parsed.is_print and parsed.problems == ()
    fields = PrintFields().merged(parsed.changes)
    assert fields == PrintFields(
        gcode_state="RUNNING", percent=37, remaining_minutes=58, layer=61, total_layers=240,
        subtask_name="Benchy_PLA", gcode_file="/data/Metadata/plate_1.gcode",
        subtask_id="1127334", task_id="1127333", print_error="0", error_code="0")
    assert fields.task_key == "1127334" and fields.file == "Benchy_PLA"
    assert fields.error is None


def test_p1_partial_reports_keep_what_they_do_not_say() -> None:
    full = PrintFields().merged(parse_report(json.dumps(X1_FULL)).changes)
    partial = parse_report(b'{"print": {"command": "push_status", "msg": 1, '
                           b'"sequence_id": "2002", "layer_num": 62}}')
    merged = full.merged(partial.changes)
    assert merged.layer == 62 and merged.remaining_minutes == 58
    assert merged.subtask_name == "Benchy_PLA" and merged.gcode_state == "RUNNING"


def test_key_falls_back_from_subtask_to_task_and_ignores_zero() -> None:
    assert PrintFields(subtask_id="0", task_id="55").task_key == "55"
    assert PrintFields(subtask_id="", task_id="0").task_key is None
    assert PrintFields(subtask_id=" 9 ").task_key == "9"


def test_errors_are_shown_only_when_not_zero() -> None:
    assert PrintFields(print_error="50348044", error_code="0").error == "50348044"
    assert PrintFields(print_error="0", error_code="0300-4000").error == "0300-4000"
    assert PrintFields(gcode_file="/sd/a.gcode").file == "/sd/a.gcode"


def test_non_print_messages_change_nothing() -> None:
    for payload in (b'{"info": {"command": "get_version"}}', b'{"system": {}}', b"{}"):
        parsed = parse_report(payload)
        assert not parsed.is_print and parsed.changes == {}


@pytest.mark.parametrize("payload", [b"", b"{not json", b"[1, 2]", b"42", b'"text"',
                                     b"\xff\xfe", b"null", b"[" * 100_000])
def test_malformed_payloads_raise_report_error(payload: bytes) -> None:
    with pytest.raises(ReportError):
        parse_report(payload)


def test_wrong_types_are_dropped_one_field_at_a_time() -> None:
    parsed = parse_report(json.dumps({"print": {
        "gcode_state": 7, "mc_percent": "lots", "layer_num": True, "mc_remaining_time": -3,
        "total_layer_num": "120", "subtask_name": ["x"], "mc_percent_extra": 1,
        "print_error": None, "task_id": 123}}))
    assert parsed.changes == {"total_layers": 120, "task_id": "123"}
    assert len(parsed.problems) == 6
    assert any("mc_percent='lots'" in p for p in parsed.problems)
    assert parse_report(b'{"print": [1]}').problems == ("'print' is list, not an object",)


def test_states_are_upper_cased_and_percent_bounded() -> None:
    assert parse_report(b'{"print": {"gcode_state": " running "}}').changes == {
        "gcode_state": "RUNNING"}
    assert parse_report(b'{"print": {"mc_percent": 101}}').changes == {}
    assert parse_report(b'{"print": {"mc_percent": 55.0}}').changes == {"percent": 55}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)
fields = st.sampled_from(["gcode_state", "mc_percent", "mc_remaining_time", "layer_num",
                          "total_layer_num", "subtask_name", "gcode_file", "subtask_id",
                          "task_id", "print_error", "mc_print_error_code", "other"])


@given(st.dictionaries(fields, json_values, max_size=12))
def test_any_print_object_parses_without_raising(body: dict[str, object]) -> None:
    parsed = parse_report(json.dumps({"print": body}))
    merged = PrintFields().merged(parsed.changes)  # every change is an attribute
    for value in (merged.percent, merged.layer, merged.remaining_minutes):
        assert value is None or (isinstance(value, int) and value >= 0)
    assert len(parsed.changes) + len(parsed.problems) == len(set(body) - {"other"})


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_report_error(payload: bytes) -> None:
    try:
        parse_report(payload)
    except ReportError:
        pass
