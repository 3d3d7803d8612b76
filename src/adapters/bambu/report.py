"""Bambu Lab ``device/{serial}/report`` messages: parsing, and merging partial reports.

Source of the format: the public reverse-engineered protocol notes and open-source LAN
clients (OpenBambuAPI ``mqtt.md``, ha-bambulab, bambulabs_api). A report is a JSON object;
what a print looks like sits under its ``"print"`` key::

    {"print": {"command": "push_status", "gcode_state": "RUNNING", "mc_percent": 42,
               "mc_remaining_time": 37, "subtask_name": "benchy", "gcode_file":
               "/data/Metadata/plate_1.gcode", "layer_num": 88, "total_layer_num": 240,
               "print_error": 0, "mc_print_error_code": "0", "subtask_id": "123",
               "task_id": "456", ...}}

``mc_remaining_time`` is in minutes; ``mc_percent`` 0-100. X1-series printers send full
reports about every second; P1/A1-series printers send one full report after a
``pushall`` request and then only the fields that changed, so every report is merged into
the last known :class:`PrintFields` (:meth:`PrintFields.merged`). Messages without a
``print`` object (``info``, ``system``, ``mc_print`` …) are not print reports: they prove
the printer is there and change nothing.

Bad input is never fatal: :func:`parse_report` raises :class:`ReportError` for a payload
that is not a JSON object, and drops (and names, in ``problems``) a known field of the
wrong type while keeping the others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["GCODE_STATES", "ParsedReport", "PrintFields", "ReportError", "parse_report"]

#: The ``gcode_state`` words that drive the queue; INIT, OFFLINE, UNKNOWN (also seen) and
#: anything else are kept for display but change no print.
GCODE_STATES = frozenset({"IDLE", "PREPARE", "SLICING", "RUNNING", "PAUSE", "FINISH",
                          "FAILED"})

_INT_FIELDS = {"mc_percent": "percent", "mc_remaining_time": "remaining_minutes",
               "layer_num": "layer", "total_layer_num": "total_layers"}
_TEXT_FIELDS = {"gcode_state": "gcode_state", "subtask_name": "subtask_name",
                "gcode_file": "gcode_file", "subtask_id": "subtask_id", "task_id": "task_id"}
_CODE_FIELDS = {"print_error": "print_error", "mc_print_error_code": "error_code"}
#: Bounds a sane printer stays within (minutes: a print of over a year is a bad value).
_LIMITS = {"percent": (0, 100), "remaining_minutes": (0, 525_600), "layer": (0, 1_000_000),
           "total_layers": (0, 1_000_000)}
_MAX_TEXT = 500


class ReportError(ValueError):
    """The payload is not a JSON object (bad UTF-8, bad JSON, a list, a number…)."""


@attrs.frozen
class PrintFields:
    """The last known print fields of one printer (None: never reported).

    ``gcode_state`` is upper-cased; ``percent`` 0-100; ``remaining_minutes`` minutes;
    ``print_error`` and ``error_code`` as text (``"0"`` means none; Bambu sends
    ``print_error`` as an int and ``mc_print_error_code`` as a string).
    """

    gcode_state: str | None = None
    percent: int | None = None
    remaining_minutes: int | None = None
    layer: int | None = None
    total_layers: int | None = None
    subtask_name: str | None = None
    gcode_file: str | None = None
    subtask_id: str | None = None
    task_id: str | None = None
    print_error: str | None = None
    error_code: str | None = None

    def merged(self, changes: Mapping[str, Any]) -> PrintFields:
        """These fields with ``changes`` (attribute names, as from :func:`parse_report`)
        applied; fields not in ``changes`` keep their last value (P1 partial reports)."""
        return attrs.evolve(self, **changes) if changes else self

    @property
    def task_key(self) -> str | None:
        """``subtask_id`` (else ``task_id``) when it names a print (not empty, not "0")."""
        for value in (self.subtask_id, self.task_id):
            if value and value.strip() not in ("", "0"):
                return value.strip()
        return None

    @property
    def file(self) -> str | None:
        """What is being printed, for people: ``subtask_name``, else ``gcode_file``."""
        return self.subtask_name or self.gcode_file or None

    @property
    def error(self) -> str | None:
        """``mc_print_error_code`` (else ``print_error``) when not 0, else None."""
        for value in (self.error_code, self.print_error):
            if value and value.strip() not in ("", "0"):
                return value.strip()
        return None


@attrs.frozen
class ParsedReport:
    """One message: ``changes`` (attribute name → value) when it had a ``print`` object
    (``is_print``), and ``problems`` (one sentence per field dropped)."""

    is_print: bool
    changes: dict[str, Any] = attrs.field(factory=dict)
    problems: tuple[str, ...] = ()


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def parse_report(payload: bytes | str) -> ParsedReport:
    """Read one ``device/{serial}/report`` payload.

    Returns the known ``print`` fields present (renamed to :class:`PrintFields`
    attributes); a field of the wrong type or out of range is left out and named in
    ``problems``. Raises :class:`ReportError` when the payload is not a JSON object."""
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ReportError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ReportError("not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ReportError(f"a report is a JSON object, not {type(data).__name__}")
    section = data.get("print")
    if section is None:
        return ParsedReport(is_print=False)
    if not isinstance(section, dict):
        return ParsedReport(is_print=False,
                            problems=(f"'print' is {type(section).__name__}, not an object",))
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, attr in _INT_FIELDS.items():
        if key in section:
            number = _as_int(section[key])
            low, high = _LIMITS[attr]
            if number is None or not low <= number <= high:
                problems.append(f"{key}={section[key]!r} is not a whole number "
                                f"from {low} to {high}")
            else:
                changes[attr] = number
    for key, attr in _TEXT_FIELDS.items():
        if key in section:
            raw = section[key]
            text_value = _as_text(raw) if attr in ("subtask_id", "task_id") else (
                raw[:_MAX_TEXT] if isinstance(raw, str) else None)
            if text_value is None:
                problems.append(f"{key}={section[key]!r} is not text")
            else:
                changes[attr] = text_value.strip().upper() if attr == "gcode_state" \
                    else text_value
    for key, attr in _CODE_FIELDS.items():
        if key in section:
            code = _as_text(section[key])
            if code is None:
                problems.append(f"{key}={section[key]!r} is not a code")
            else:
                changes[attr] = code
    return ParsedReport(is_print=True, changes=changes, problems=tuple(problems))
