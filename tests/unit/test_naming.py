"""Stored file names: ``FirstAndLastName_PrintMethod_Color_JobID`` in safe ASCII."""

from __future__ import annotations

import re

import pytest

from printcore import job_basename, stored_file_name

SAFE = re.compile(r"^[A-Za-z0-9]+_[A-Za-z0-9]+_[A-Za-z0-9]+_[0-9]+$")


def test_the_documented_example() -> None:
    assert job_basename("Jane van Doe", "filament", "light blue", 42) == (
        "JaneVanDoe_Filament_LightBlue_42"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Zoë Ångström", "ZoeAngstrom"),
        ("José  María   Núñez", "JoseMariaNunez"),
        ("O'Brien-Smith", "OBrienSmith"),
        ("ﬁona ﬂores", "FionaFlores"),  # ligatures decompose
    ],
)
def test_non_ascii_names_become_ascii(name: str, expected: str) -> None:
    assert job_basename(name, "resin", "grey", 7) == f"{expected}_Resin_Grey_7"


@pytest.mark.parametrize(
    "hostile",
    [
        "../../x",
        "..\\..\\windows\\system32",
        "/etc/passwd",
        "C:\\Users\\x",
        "name\x00.stl",
        'a/b\\c:d*e?f"g<h>i|j',
        "line\nbreak",
        "$(rm -rf ~)",
        "-rf",
        ".",
        "..",
    ],
)
def test_path_separators_and_shell_characters_never_survive(hostile: str) -> None:
    base = job_basename(hostile, hostile, hostile, 3)
    assert SAFE.match(base), base
    assert ".." not in base and "/" not in base and "\\" not in base


def test_traversal_keeps_only_the_letters() -> None:
    assert job_basename("../../x", "filament", "red", 1) == "X_Filament_Red_1"


@pytest.mark.parametrize("empty", ["", "   ", "王小明", "🙂🙂", "---", "\u200b"])
def test_empty_parts_get_a_placeholder(empty: str) -> None:
    assert job_basename(empty, empty, empty, 9) == "Unknown_Unknown_Any_9"


def test_very_long_parts_are_cut() -> None:
    base = job_basename("A" * 10_000, "filament", "b" * 500, 123456)
    name, method, color, job_id = base.split("_")
    assert len(name) <= 40 and len(color) <= 40
    assert (method, job_id) == ("Filament", "123456")
    assert SAFE.match(base)
    # Room left for "_sliced99.gcode.3mf" under the usual 255-byte file name limit.
    assert len(stored_file_name(base, "sliced", ".gcode.3mf", 99)) < 255


def test_stored_names_for_the_original_and_sliced_files() -> None:
    base = "JaneVanDoe_Filament_LightBlue_42"
    assert stored_file_name(base, "original", ".stl") == f"{base}.stl"
    assert stored_file_name(base, "sliced", ".gcode.3mf") == f"{base}_sliced.gcode.3mf"
    assert stored_file_name(base, "sliced", ".gcode.3mf", 1) == f"{base}_sliced.gcode.3mf"
    assert stored_file_name(base, "sliced", ".gcode", 2) == f"{base}_sliced2.gcode"
