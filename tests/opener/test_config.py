"""The opener's INI file (refusals name the file and the setting) and slicer detection on
Windows, macOS and Linux install layouts built in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from _opener_kit import SECRET

from entrypoints.opener.config import (
    config_template,
    default_config_path,
    detect_slicers,
    load_config,
)
from entrypoints.opener.token import Refused


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "opener.ini"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_config_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_SHARE", str(tmp_path / "share"))
    path = _write(tmp_path, f"""
[opener]
storage_root = $LAB_SHARE/storage
secret = {SECRET}
server_url = http://printlab.example.edu:8000/
host = Front desk PC
report_timeout = 2.5

[slicers]
.gcode.3mf = C:\\Program Files\\Bambu Studio\\bambu-studio.exe
.STL = /opt/prusa%20slicer/prusa-slicer
.obj =
""")
    config = load_config(path)
    assert config.storage_root == tmp_path / "share" / "storage"
    assert config.secret == SECRET
    assert config.server_url == "http://printlab.example.edu:8000"
    assert config.host == "Front desk PC" and config.report_timeout == 2.5
    assert config.slicers == {
        ".gcode.3mf": "C:\\Program Files\\Bambu Studio\\bambu-studio.exe",
        ".stl": "/opt/prusa%20slicer/prusa-slicer",
    }


def test_the_template_is_a_config_once_filled_in(tmp_path: Path) -> None:
    text = config_template(str(tmp_path), SECRET, "https://lab.example.edu")
    config = load_config(_write(tmp_path, text))
    assert config.storage_root == tmp_path and config.slicers == {}
    with pytest.raises(Refused, match="storage_root is not set"):
        load_config(_write(tmp_path, config_template()))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no \\[opener\\] section"),
        ("[opener\nstorage_root=/x", "cannot be read"),
        ("[opener]\nsecret = " + SECRET, "storage_root is not set"),
        ("[opener]\nstorage_root = relative/path\nsecret = " + SECRET, "absolute path"),
        ("[opener]\nstorage_root = /srv/storage\n", "secret must be at least 16"),
        ("[opener]\nstorage_root = /srv/storage\nsecret = short", "secret must be at least 16"),
        (f"[opener]\nstorage_root = /srv\nsecret = {SECRET}\nserver_url = ftp://x", "http://"),
        (f"[opener]\nstorage_root = /srv\nsecret = {SECRET}\nreport_timeout = soon", "number"),
        (f"[opener]\nstorage_root = /srv\nsecret = {SECRET}\nreport_timeout = 600", "between"),
        (f"[opener]\nstorage_root = /srv\nsecret = {SECRET}\n[slicers]\n.exe = /bin/sh",
         "use one of"),
        (f"[opener]\nstorage_root = /srv\nsecret = {SECRET}\n[opener]\nx=1", "cannot be read"),
    ],
)
def test_bad_configs_are_refused_naming_the_file(tmp_path: Path, text: str, words: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(Refused, match=words) as refused:
        load_config(path)
    assert refused.value.code == "config"
    assert str(path) in refused.value.message


def test_a_missing_config_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="--init-config"):
        load_config(tmp_path / "nope.ini")


def test_the_config_lives_in_the_users_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert default_config_path() == tmp_path / "cfg" / "printcore" / "opener.ini"


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def test_windows_install_places(tmp_path: Path) -> None:
    pf, pf86 = tmp_path / "Program Files", tmp_path / "Program Files (x86)"
    orca = _touch(pf / "OrcaSlicer" / "orca-slicer.exe")
    prusa = _touch(pf86 / "Prusa3D" / "PrusaSlicer" / "prusa-slicer.exe")
    _touch(pf / "UltiMaker Cura 5.6.0" / "UltiMaker-Cura.exe")
    cura = _touch(pf / "UltiMaker Cura 5.7.2" / "UltiMaker-Cura.exe")
    env = {"ProgramFiles": str(pf), "ProgramFiles(x86)": str(pf86)}
    found = detect_slicers("win32", env, tmp_path / "home", tmp_path, which=lambda _: None)
    assert [(s.name, s.program) for s in found] == [
        ("OrcaSlicer", str(orca)), ("PrusaSlicer", str(prusa)), ("Cura", str(cura))]
    bambu = _touch(pf / "Bambu Studio" / "bambu-studio.exe")
    first = detect_slicers("win32", env, tmp_path / "home", tmp_path, which=lambda _: None)[0]
    assert (first.name, first.program) == ("Bambu Studio", str(bambu))
    assert ".gcode.3mf" in first.extensions


def test_macos_install_places(tmp_path: Path) -> None:
    (tmp_path / "Applications" / "Original Prusa Drivers" / "PrusaSlicer.app").mkdir(parents=True)
    (tmp_path / "home" / "Applications" / "BambuStudio.app").mkdir(parents=True)
    found = detect_slicers("darwin", {}, tmp_path / "home", tmp_path, which=lambda _: None)
    assert [(s.name, Path(s.program).name) for s in found] == [
        ("Bambu Studio", "BambuStudio.app"), ("PrusaSlicer", "PrusaSlicer.app")]


def test_linux_path_flatpak_and_appimage(tmp_path: Path) -> None:
    home = tmp_path / "home"
    flatpak = _touch(tmp_path / "var/lib/flatpak/exports/bin/io.github.softfever.OrcaSlicer")
    image = _touch(home / "Applications" / "Bambu_Studio_linux_ubuntu-v02.00.00.AppImage")
    on_path = {"prusa-slicer": "/usr/bin/prusa-slicer"}
    found = detect_slicers("linux", {}, home, tmp_path, which=on_path.get)
    assert [(s.name, s.program) for s in found] == [
        ("Bambu Studio", str(image)),
        ("OrcaSlicer", str(flatpak)),
        ("PrusaSlicer", "/usr/bin/prusa-slicer"),
    ]


def test_nothing_installed_finds_nothing(tmp_path: Path) -> None:
    for system in ("win32", "darwin", "linux"):
        assert detect_slicers(system, {"ProgramFiles": str(tmp_path)}, tmp_path, tmp_path,
                              which=lambda _: None) == []


def test_the_example_in_the_docs_is_a_valid_config(tmp_path: Path) -> None:
    """docs/slicer-opener.md's ```ini block, read by the opener's own parser."""
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "slicer-opener.md").read_text()
    [block] = re.findall(r"```ini\n(.*?)```", doc, flags=re.S)
    config = load_config(_write(tmp_path, block))
    assert config.storage_root == Path("/mnt/printcore/storage")
    assert config.server_url == "http://printlab.example.edu:8000"
    assert config.slicers == {".gcode.3mf": "/usr/bin/bambu-studio",
                              ".stl": "/usr/bin/prusa-slicer"}
