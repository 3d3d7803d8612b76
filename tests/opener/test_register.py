"""Registration as the print3d:// handler: for real on Linux (xdg-utils, in a temporary
HOME), then a "click" through the desktop's own launcher; Windows through the registry
seam; macOS says what to do."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _opener_kit import (
    MODEL,
    launches,
    link,
    make_fake_slicer,
    make_storage,
    user_env,
    write_config,
)

from _support import service_missing
from entrypoints.opener.register import (
    WINDOWS_KEY,
    desktop_entry,
    desktop_exec,
    register,
    unregister,
    windows_entries,
)
from entrypoints.opener.token import Refused


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        service_missing(f"{tool} is not installed (apt-get install {package})")


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def _query(env: dict[str, str]) -> str:
    return _run(env, "xdg-mime", "query", "default", "x-scheme-handler/print3d").stdout.strip()


def test_linux_register_then_unregister_with_xdg_mime(tmp_path: Path) -> None:
    _need("xdg-mime", "xdg-utils")
    home = tmp_path / "home"
    env = user_env(home)
    assert _query(env) == ""
    done = _run(env, sys.executable, "-m", "entrypoints.opener", "--register")
    assert done.returncode == 0, done.stderr
    assert _query(env) == "printcore-open.desktop"
    entry = home / ".local/share/applications/printcore-open.desktop"
    text = entry.read_text()
    assert "MimeType=x-scheme-handler/print3d;\n" in text
    assert f"Exec={sys.executable} -m entrypoints.opener %u\n" in text
    mimeapps = home / ".config" / "mimeapps.list"
    mimeapps.write_text(mimeapps.read_text() + "text/plain=gedit.desktop\n# kept\n")

    undone = _run(env, sys.executable, "-m", "entrypoints.opener", "--unregister")
    assert undone.returncode == 0, undone.stderr
    assert not entry.exists()
    assert _query(env) == ""
    left = mimeapps.read_text()
    assert "print3d" not in left and "text/plain=gedit.desktop" in left and "# kept" in left


def test_a_click_opens_the_file_through_the_registered_handler(tmp_path: Path) -> None:
    """What a browser on a GNOME/KDE/XFCE desktop does with a print3d:// link: xdg-open
    hands it to GIO, which runs our desktop file's Exec line with the URL."""
    _need("xdg-open", "xdg-utils")
    _need("gio", "libglib2.0-bin")
    home = tmp_path / "home"
    env = user_env(home)
    root = make_storage(tmp_path / "storage")
    program, record = make_fake_slicer(tmp_path / "slicer")
    write_config(home, root, program)
    assert _run(env, sys.executable, "-m", "entrypoints.opener",
                "--register").returncode == 0
    clicked = _run({**env, "XDG_CURRENT_DESKTOP": "GNOME"}, "xdg-open", link())
    assert clicked.returncode == 0, clicked.stderr
    assert launches(record)[0]["argv"] == [str((root / MODEL).resolve())]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/usr/bin/printcore-open"], "/usr/bin/printcore-open %u"),
        (["/opt/my tools/printcore-open"], '"/opt/my tools/printcore-open" %u'),
        (["/opt/$HOME/a\"b`c\\d"], '"/opt/\\\\$HOME/a\\\\"b\\\\`c\\\\\\\\d" %u'),
        (["/opt/100%/open"], "/opt/100%%/open %u"),
        (["/venv/bin/python", "-m", "entrypoints.opener"],
         "/venv/bin/python -m entrypoints.opener %u"),
    ],
)
def test_desktop_exec_quoting(argv: list[str], expected: str) -> None:
    assert desktop_exec(argv) == expected


def test_the_desktop_entry_declares_the_scheme() -> None:
    text = desktop_entry(["/usr/bin/printcore-open"])
    assert text.startswith("[Desktop Entry]\n")
    assert "MimeType=x-scheme-handler/print3d;" in text and "NoDisplay=true" in text


class FakeRegistry:
    """HKEY_CURRENT_USER as a dict: key → {value name → data}."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, str]] = {}

    def set_value(self, key: str, name: str, value: str) -> None:
        parts = key.split("\\")
        for i in range(1, len(parts) + 1):  # CreateKeyEx makes the parents too
            self.keys.setdefault("\\".join(parts[:i]), {})
        self.keys[key][name] = value

    def delete_tree(self, key: str) -> None:
        for name in [k for k in self.keys if k == key or k.startswith(key + "\\")]:
            del self.keys[name]


EXE = r"C:\Program Files\printcore\printcore-open.exe"


def test_windows_registration_writes_the_url_protocol_keys() -> None:
    registry = FakeRegistry()
    registry.set_value(r"Software\Classes\.txt", "", "txtfile")
    registry.set_value(WINDOWS_KEY + r"\shell\edit\command", "", "stale")
    message = register([EXE], system="win32", registry=registry)
    assert "HKCU" in message
    assert registry.keys[r"Software\Classes\print3d"] == {
        "": "URL:print3d Protocol", "URL Protocol": ""}
    assert registry.keys[r"Software\Classes\print3d\shell\open\command"] == {
        "": '"C:\\Program Files\\printcore\\printcore-open.exe" "%1"'}
    assert registry.keys[r"Software\Classes\print3d\DefaultIcon"] == {"": f'"{EXE}",0'}
    assert WINDOWS_KEY + r"\shell\edit\command" not in registry.keys  # replaced, not merged

    unregister(system="win32", registry=registry)
    assert not [k for k in registry.keys if k.startswith(WINDOWS_KEY)]
    assert registry.keys[r"Software\Classes\.txt"] == {"": "txtfile"}


def test_windows_command_for_a_script_install() -> None:
    entries = dict(((k, n), v) for k, n, v in windows_entries(
        [r"C:\Python311\python.exe", "-m", "entrypoints.opener"]))
    assert entries[(WINDOWS_KEY + r"\shell\open\command", "")] == (
        r'C:\Python311\python.exe -m entrypoints.opener "%1"')


def test_macos_registration_explains_the_app_bundle() -> None:
    with pytest.raises(Refused, match="app bundle") as refused:
        register(["/usr/local/bin/printcore-open"], system="darwin")
    assert refused.value.code == "config"


def test_the_console_script_registers_itself(tmp_path: Path) -> None:
    """``printcore-open`` from ``pip install -e .`` (pyproject's [project.scripts])."""
    _need("xdg-mime", "xdg-utils")
    script = Path(sys.executable).with_name("printcore-open")
    if not script.is_file():
        service_missing(f"{script} is missing: pip install -e '.[test]'")
    home = tmp_path / "home"
    env = user_env(home)
    done = _run(env, str(script), "--register")
    assert done.returncode == 0, done.stderr
    entry = home / ".local/share/applications/printcore-open.desktop"
    assert f"Exec={desktop_exec([str(script.resolve())])}\n" in entry.read_text()
    assert _query(env) == "printcore-open.desktop"
