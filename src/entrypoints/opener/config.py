"""The slicer opener's configuration: one INI file per staff user, and slicer detection.

The file lives in the user's config folder (``platformdirs.user_config_path("printcore")``:
``~/.config/printcore/opener.ini`` on Linux, ``%LOCALAPPDATA%\\printcore\\opener.ini`` on
Windows, ``~/Library/Application Support/printcore/opener.ini`` on macOS)::

    [opener]
    # The storage root as this workstation sees it (a mapped drive, an SMB/NFS mount).
    storage_root = Z:\\printcore\\storage
    # The server's PRINTCORE_OPENER_SECRET (at least 16 characters).
    secret = 9q0k...
    # Where "opened in slicer" is reported (optional; empty: no report).
    server_url = http://printlab.example.edu:8000
    # A name for this computer in the job's history (optional; default: its host name).
    host =

    [slicers]
    # extension = program; unset extensions use a detected slicer.
    .gcode.3mf = C:\\Program Files\\Bambu Studio\\bambu-studio.exe
    .stl = C:\\Program Files\\Prusa3D\\PrusaSlicer\\prusa-slicer.exe

Detected when an extension has no program: Bambu Studio, OrcaSlicer, PrusaSlicer and
Cura at their usual install places (:func:`detect_slicers`), first found in that order.
"""

from __future__ import annotations

import configparser
import os
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from entrypoints.opener.paths import DEFAULT_EXTENSIONS
from entrypoints.opener.token import Refused, check_secret

__all__ = [
    "KNOWN_SLICERS",
    "OpenerConfig",
    "Slicer",
    "config_template",
    "default_config_path",
    "detect_slicers",
    "load_config",
]

APP_NAME = "printcore"
CONFIG_NAME = "opener.ini"


@dataclass(frozen=True)
class Slicer:
    """A slicer program: ``program`` is an executable's path, or a macOS ``.app`` bundle."""

    name: str
    program: str
    extensions: tuple[str, ...]


#: The slicers looked for, in order of preference, with the files each opens.
KNOWN_SLICERS: dict[str, tuple[str, ...]] = {
    "Bambu Studio": (".gcode.3mf", ".3mf", ".stl", ".obj"),
    "OrcaSlicer": (".gcode.3mf", ".3mf", ".stl", ".obj"),
    "PrusaSlicer": (".3mf", ".stl", ".obj", ".gcode"),
    "Cura": (".3mf", ".stl", ".obj", ".gcode"),
}


@dataclass(frozen=True)
class OpenerConfig:
    """The opener's settings (see the module docstring). ``slicers`` maps an extension
    (``.3mf``) to a program path; ``report_timeout`` is in seconds."""

    path: Path
    storage_root: Path
    secret: str
    server_url: str | None
    host: str
    slicers: dict[str, str] = field(default_factory=dict)
    report_timeout: float = 5.0


def default_config_path() -> Path:
    """``<user config folder>/printcore/opener.ini`` (platformdirs)."""
    import platformdirs

    return platformdirs.user_config_path(APP_NAME, appauthor=False) / CONFIG_NAME


def config_template(storage_root: str = "", secret: str = "", server_url: str = "") -> str:
    """A commented starter INI (what ``printcore-open --init-config`` writes)."""
    return (
        "# printcore slicer opener (see docs/slicer-opener.md)\n"
        "[opener]\n"
        "# The storage root as this workstation sees it: a mapped drive or a mount.\n"
        f"storage_root = {storage_root}\n"
        "# The server's PRINTCORE_OPENER_SECRET (at least 16 characters).\n"
        f"secret = {secret}\n"
        "# The printcore server, for the 'opened in slicer' event (empty: no report).\n"
        f"server_url = {server_url}\n"
        "# This computer's name in the job history (empty: the host name).\n"
        "host =\n"
        "\n"
        "[slicers]\n"
        "# extension = full path of the program; empty: Bambu Studio, OrcaSlicer,\n"
        "# PrusaSlicer or Cura found at their usual install places.\n"
        + "".join(f"{ext} =\n" for ext in DEFAULT_EXTENSIONS)
    )


def _problem(path: Path, text: str) -> Refused:
    return Refused("config", f"{path}: {text}")


def load_config(path: Path) -> OpenerConfig:
    """Read the INI file at ``path``. Raises Refused(``config``) naming the file and the
    setting when it is missing, unreadable, or a value is unusable."""
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep keys as written
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise _problem(
            path, "not found. Create it with `printcore-open --init-config` and fill in "
            "storage_root and secret (docs/slicer-opener.md).") from None
    except (OSError, UnicodeDecodeError, configparser.Error) as err:
        raise _problem(path, f"cannot be read: {err}") from None
    if not parser.has_section("opener"):
        raise _problem(path, "has no [opener] section.")
    section = parser["opener"]
    root_text = section.get("storage_root", "").strip()
    if not root_text:
        raise _problem(path, "storage_root is not set (the storage folder as mounted here).")
    root = Path(os.path.expandvars(os.path.expanduser(root_text)))
    if not root.is_absolute():
        raise _problem(path, f"storage_root = {root_text} must be an absolute path.")
    try:
        secret = check_secret(section.get("secret"), "secret")
    except ValueError as err:
        raise _problem(path, str(err)) from None
    server_url = section.get("server_url", "").strip().rstrip("/") or None
    if server_url is not None and not server_url.startswith(("http://", "https://")):
        raise _problem(path, f"server_url = {server_url} must start with http:// or https://.")
    try:
        timeout = float(section.get("report_timeout", "5"))
    except ValueError:
        raise _problem(path, "report_timeout must be a number of seconds.") from None
    if not 0.1 <= timeout <= 60:
        raise _problem(path, "report_timeout must be between 0.1 and 60 seconds.")
    host = section.get("host", "").strip() or socket.gethostname()
    slicers: dict[str, str] = {}
    if parser.has_section("slicers"):
        for key, value in parser["slicers"].items():
            ext = key.strip().lower()
            if ext not in DEFAULT_EXTENSIONS:
                raise _problem(path, f"[slicers] {key}: use one of {', '.join(DEFAULT_EXTENSIONS)}.")
            program = os.path.expandvars(os.path.expanduser(value.strip()))
            if program:
                slicers[ext] = program
    return OpenerConfig(path, root, secret, server_url, host[:120], slicers, timeout)


def _candidates(system: str, env: Mapping[str, str], home: Path, root: Path
                ) -> dict[str, list[Path]]:
    """Where each known slicer usually lives on ``system`` (``win32``, ``darwin``, ``linux``)."""
    if system == "win32":
        bases = [Path(env[k]) for k in ("ProgramFiles", "ProgramW6432", "ProgramFiles(x86)",
                                         "LOCALAPPDATA") if env.get(k)]
        found: dict[str, list[Path]] = {name: [] for name in KNOWN_SLICERS}
        for base in bases:
            found["Bambu Studio"].append(base / "Bambu Studio" / "bambu-studio.exe")
            found["OrcaSlicer"].append(base / "OrcaSlicer" / "orca-slicer.exe")
            found["PrusaSlicer"].append(base / "Prusa3D" / "PrusaSlicer" / "prusa-slicer.exe")
            # Cura installs into a versioned folder: newest first.
            for pattern in ("UltiMaker Cura*", "Ultimaker Cura*"):
                for folder in sorted(base.glob(pattern), reverse=True):
                    found["Cura"] += [folder / "UltiMaker-Cura.exe", folder / "Cura.exe"]
        return found
    if system == "darwin":
        apps = [root / "Applications", home / "Applications"]
        return {
            "Bambu Studio": [a / "BambuStudio.app" for a in apps],
            "OrcaSlicer": [a / "OrcaSlicer.app" for a in apps],
            "PrusaSlicer": [p for a in apps for p in (
                a / "Original Prusa Drivers" / "PrusaSlicer.app", a / "PrusaSlicer.app")],
            "Cura": [p for a in apps for p in (a / "UltiMaker Cura.app", a / "Ultimaker Cura.app")],
        }
    flatpak = [root / "var/lib/flatpak/exports/bin", home / ".local/share/flatpak/exports/bin"]
    images = sorted((home / "Applications").glob("*.AppImage"), reverse=True) \
        if (home / "Applications").is_dir() else []

    def appimages(*prefixes: str) -> list[Path]:
        return [p for p in images if p.name.lower().startswith(prefixes)]

    return {
        "Bambu Studio": [*(f / "com.bambulab.BambuStudio" for f in flatpak),
                         *appimages("bambu_studio", "bambu-studio", "bambustudio")],
        "OrcaSlicer": [*(f / "io.github.softfever.OrcaSlicer" for f in flatpak),
                       *appimages("orcaslicer", "orca-slicer", "orca_slicer")],
        "PrusaSlicer": [*(f / "com.prusa3d.PrusaSlicer" for f in flatpak),
                        *appimages("prusaslicer", "prusa-slicer")],
        "Cura": [*(f / "com.ultimaker.cura" for f in flatpak),
                 *appimages("ultimaker-cura", "ultimaker_cura", "cura")],
    }


#: Program names looked up on PATH on Linux, per slicer.
LINUX_COMMANDS: dict[str, tuple[str, ...]] = {
    "Bambu Studio": ("bambu-studio", "BambuStudio"),
    "OrcaSlicer": ("orca-slicer", "OrcaSlicer"),
    "PrusaSlicer": ("prusa-slicer", "PrusaSlicer"),
    "Cura": ("UltiMaker-Cura", "cura"),
}


def detect_slicers(
    system: str | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    root: Path = Path("/"),
    which: Callable[[str], str | None] = shutil.which,
) -> list[Slicer]:
    """The known slicers installed here, in :data:`KNOWN_SLICERS` order, at most one each.

    ``system`` is ``sys.platform`` (``win32``, ``darwin``, else Linux-like); ``env`` the
    environment (Windows' ``ProgramFiles`` ...); ``home`` the user's home; ``root`` the
    file system root (macOS ``/Applications``, Linux system flatpaks); ``which`` looks a
    program up on PATH (Linux). Tests pass a temporary tree for all of them.
    """
    system = system or sys.platform
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    candidates = _candidates(system, env, home, root)
    found: list[Slicer] = []
    for name, extensions in KNOWN_SLICERS.items():
        program: str | None = None
        if system not in ("win32", "darwin"):
            program = next((p for c in LINUX_COMMANDS[name] if (p := which(c))), None)
        if program is None:
            for path in candidates.get(name, []):
                ok = path.is_dir() if path.suffix == ".app" else path.is_file()
                if ok:
                    program = str(path)
                    break
        if program is not None:
            found.append(Slicer(name, program, extensions))
    return found
