"""Registering ``printcore-open`` as this user's handler of ``print3d://`` links.

* Linux (freedesktop): ``<XDG_DATA_HOME>/applications/printcore-open.desktop`` with
  ``MimeType=x-scheme-handler/print3d;``, made the default with
  ``xdg-mime default printcore-open.desktop x-scheme-handler/print3d`` (xdg-utils).
  Unregistering deletes the file and our line from ``<XDG_CONFIG_HOME>/mimeapps.list``.
* Windows: ``HKEY_CURRENT_USER\\Software\\Classes\\print3d`` with ``URL Protocol`` and
  ``shell\\open\\command`` = ``"<exe>" "%1"`` (no administrator rights needed), through
  ``winreg`` behind the small :class:`Registry` seam.
* macOS: the scheme is declared by the app bundle (``CFBundleURLTypes`` in its
  Info.plist, see packaging/printcore-open.spec); registering asks LaunchServices
  (``lsregister -f``) to read the bundle the running program is in.

Every failure raises Refused(``config``) saying what to install or do.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from entrypoints.opener.token import SCHEME, Refused

__all__ = [
    "DESKTOP_ID",
    "Registry",
    "desktop_entry",
    "desktop_exec",
    "own_command",
    "register",
    "register_windows",
    "unregister",
    "unregister_windows",
    "windows_entries",
]

DESKTOP_ID = "printcore-open.desktop"
MIME_TYPE = f"x-scheme-handler/{SCHEME}"
WINDOWS_KEY = rf"Software\Classes\{SCHEME}"
LSREGISTER = ("/System/Library/Frameworks/CoreServices.framework/Frameworks/"
              "LaunchServices.framework/Support/lsregister")


def own_command() -> list[str]:
    """The argv that runs this opener again: the frozen executable, the installed
    ``printcore-open`` script, or ``python -m entrypoints.opener``."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name.lower().startswith("printcore-open") \
            and script.is_file():
        return [str(script.resolve())]
    return [str(Path(sys.executable).absolute()), "-m", "entrypoints.opener"]


# --- Linux --------------------------------------------------------------------------------

_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def desktop_exec(argv: list[str]) -> str:
    """``argv`` as a desktop entry ``Exec`` value, followed by ``%u`` (the URL).

    Quoting per the Desktop Entry Specification: an argument with a reserved character
    is double-quoted with ``"`$\\`` backslash-escaped, then the string escape doubles every
    backslash; a literal ``%`` is written ``%%``.
    """
    out = []
    for arg in argv:
        if any(ch in _RESERVED for ch in arg) or not arg:
            quoted = '"' + "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg) + '"'
            arg = quoted.replace("\\", "\\\\")
        out.append(arg.replace("%", "%%"))
    return " ".join([*out, "%u"])


def desktop_entry(argv: list[str]) -> str:
    """The ``.desktop`` file's text for running ``argv`` on a print3d:// URL."""
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=printcore slicer opener\n"
        "Comment=Opens print3d:// links from the printcore dashboard in a slicer\n"
        f"Exec={desktop_exec(argv)}\n"
        "Terminal=false\n"
        "NoDisplay=true\n"
        f"MimeType={MIME_TYPE};\n"
    )


def _applications_dir() -> Path:
    import platformdirs

    return platformdirs.user_data_path() / "applications"


def _mimeapps_list() -> Path:
    import platformdirs

    return platformdirs.user_config_path() / "mimeapps.list"


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise Refused("config", f"{argv[0]} is not installed (apt-get install xdg-utils).") \
            from None
    except subprocess.CalledProcessError as err:
        message = (err.stderr or b"").decode("utf-8", "replace").strip()
        raise Refused("config", f"{' '.join(argv)} failed: {message}") from None


def _refresh_database(folder: Path) -> None:
    if shutil.which("update-desktop-database"):
        subprocess.run(["update-desktop-database", str(folder)], capture_output=True,
                       timeout=60, check=False)


def register_linux(argv: list[str]) -> str:
    folder = _applications_dir()
    folder.mkdir(parents=True, exist_ok=True)
    entry = folder / DESKTOP_ID
    entry.write_text(desktop_entry(argv), encoding="utf-8")
    _refresh_database(folder)
    if not shutil.which("xdg-mime"):
        raise Refused("config", f"Wrote {entry}, but xdg-mime is not installed "
                                "(apt-get install xdg-utils), so it is not the default yet.")
    _run(["xdg-mime", "default", DESKTOP_ID, MIME_TYPE])
    return f"print3d:// links now open with {' '.join(argv)} ({entry})."


def _drop_mimeapps_lines(path: Path) -> None:
    """Remove ``x-scheme-handler/print3d=printcore-open.desktop`` entries, keeping every
    other line (comments included) as it was."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return
    kept = []
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == MIME_TYPE:
            others = [v for v in value.split(";") if v.strip() and v.strip() != DESKTOP_ID]
            if not others:
                continue
            line = f"{MIME_TYPE}={';'.join(others)};\n"
        kept.append(line)
    if kept != lines:
        path.write_text("".join(kept), encoding="utf-8")


def unregister_linux() -> str:
    folder = _applications_dir()
    entry = folder / DESKTOP_ID
    existed = entry.exists()
    entry.unlink(missing_ok=True)
    for path in (_mimeapps_list(), folder / "mimeapps.list"):
        _drop_mimeapps_lines(path)
    _refresh_database(folder)
    return f"Removed {entry}." if existed else "printcore-open was not registered."


# --- Windows ------------------------------------------------------------------------------


class Registry(Protocol):
    """The part of the Windows registry we write: keys under HKEY_CURRENT_USER."""

    def set_value(self, key: str, name: str, value: str) -> None:
        """Create ``key`` if needed and set its string value ``name`` ("" = default)."""
        ...

    def delete_tree(self, key: str) -> None:
        """Delete ``key`` and everything under it; nothing when it does not exist."""
        ...


class WinRegistry:
    """:class:`Registry` on ``winreg`` (Windows only)."""

    def set_value(self, key: str, name: str, value: str) -> None:
        if sys.platform != "win32":
            raise Refused("config", "The Windows registry exists on Windows only.")
        import winreg

        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_WRITE) as handle:
            winreg.SetValueEx(handle, name, 0, winreg.REG_SZ, value)

    def delete_tree(self, key: str) -> None:
        if sys.platform != "win32":
            raise Refused("config", "The Windows registry exists on Windows only.")
        import winreg

        try:
            handle = winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0,
                                    winreg.KEY_READ | winreg.KEY_WRITE)
        except FileNotFoundError:
            return
        with handle:
            while True:
                try:
                    child = winreg.EnumKey(handle, 0)
                except OSError:
                    break
                self.delete_tree(f"{key}\\{child}")
        winreg.DeleteKey(winreg.HKEY_CURRENT_USER, key)


def windows_entries(argv: list[str]) -> list[tuple[str, str, str]]:
    """``(key, value name, data)`` to write under HKEY_CURRENT_USER for ``argv``."""
    command = subprocess.list2cmdline(argv) + ' "%1"'
    return [
        (WINDOWS_KEY, "", f"URL:{SCHEME} Protocol"),
        (WINDOWS_KEY, "URL Protocol", ""),
        (rf"{WINDOWS_KEY}\DefaultIcon", "", f'"{argv[0]}",0'),
        (rf"{WINDOWS_KEY}\shell\open\command", "", command),
    ]


def register_windows(argv: list[str], registry: Registry) -> str:
    registry.delete_tree(WINDOWS_KEY)
    for key, name, value in windows_entries(argv):
        registry.set_value(key, name, value)
    return f"print3d:// links now open with {subprocess.list2cmdline(argv)} (HKCU\\{WINDOWS_KEY})."


def unregister_windows(registry: Registry) -> str:
    registry.delete_tree(WINDOWS_KEY)
    return f"Removed HKCU\\{WINDOWS_KEY}."


# --- macOS --------------------------------------------------------------------------------


def _bundle_of(executable: Path) -> Path | None:
    for parent in executable.parents:
        if parent.suffix == ".app":
            return parent
    return None


def register_macos() -> str:
    bundle = _bundle_of(Path(sys.executable).resolve()) if getattr(sys, "frozen", False) else None
    if bundle is None:
        raise Refused(
            "config",
            "On macOS the print3d:// scheme comes with the app bundle: build it with "
            "packaging/build.sh, move 'printcore-open.app' to /Applications and open it once "
            "(docs/slicer-opener.md).",
        )
    _run([LSREGISTER, "-f", str(bundle)])
    return f"print3d:// links now open with {bundle}."


# --- dispatch -----------------------------------------------------------------------------


def register(argv: list[str] | None = None, system: str | None = None,
             registry: Registry | None = None) -> str:
    """Make ``argv`` (default: :func:`own_command`) this user's print3d:// handler.
    Returns what was done; raises Refused(``config``)."""
    argv = argv or own_command()
    system = system or sys.platform
    if system == "win32":
        return register_windows(argv, registry or WinRegistry())
    if system == "darwin":
        return register_macos()
    return register_linux(argv)


def unregister(system: str | None = None, registry: Registry | None = None) -> str:
    """Undo :func:`register` for this user. Returns what was done."""
    system = system or sys.platform
    if system == "win32":
        return unregister_windows(registry or WinRegistry())
    if system == "darwin":
        return ("On macOS, delete printcore-open.app (LaunchServices then forgets the "
                "print3d:// scheme).")
    return unregister_linux()
