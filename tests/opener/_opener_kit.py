"""What the slicer-opener tests share: a storage tree, a fake slicer that records how it
was started, an isolated user (HOME and XDG folders) with an opener.ini, and signed links.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from entrypoints.opener.token import make_link

SECRET = "test-opener-secret-0123456789"
JOB_ID = 7
FOLDER = f"ReadyToPrint/Jane_Filament_Red_{JOB_ID}"
MODEL = f"{FOLDER}/Jane_Filament_Red_{JOB_ID}.stl"
SLICED = f"{FOLDER}/Jane_Filament_Red_{JOB_ID}_sliced.gcode.3mf"
SRC = Path(__file__).resolve().parents[2] / "src"

FAKE_SLICER = """#!{python}
# A stand-in slicer: appends how it was started to {record} and exits.
import json, os, sys
with open({record!r}, "a", encoding="utf-8") as out:
    out.write(json.dumps({{
        "argv": sys.argv[1:], "sid": os.getsid(0), "pgid": os.getpgrp(),
        "cwd": os.getcwd(), "stdin_tty": os.isatty(0),
    }}) + "\\n")
"""


def make_storage(root: Path) -> Path:
    """A storage root with job 7's model and sliced file under ReadyToPrint/."""
    for rel, data in ((MODEL, b"solid cube\nendsolid cube\n"), (SLICED, b"PK\x03\x04fake")):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def make_fake_slicer(folder: Path) -> tuple[Path, Path]:
    """(the fake slicer program, its record file). ``folder`` may hold spaces and shell
    metacharacters: the program is started without a shell."""
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "fake slicer.py"
    record = folder / "launches.jsonl"
    program.write_text(FAKE_SLICER.format(python=sys.executable, record=str(record)))
    program.chmod(0o755)
    return program, record


def launches(record: Path, count: int = 1, timeout: float = 15) -> list[dict[str, object]]:
    """Wait until the fake slicer has recorded ``count`` launches; return them all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if record.exists():
            lines = [json.loads(x) for x in record.read_text().splitlines() if x.endswith("}")]
            if len(lines) >= count:
                return lines
        time.sleep(0.02)
    raise AssertionError(f"the fake slicer did not record {count} launch(es) in {timeout} s")


def user_env(home: Path, display: bool = False) -> dict[str, str]:
    """An environment for a subprocess with its own HOME and XDG folders (platformdirs
    reads these on Linux), ``src`` importable, and no display unless asked."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP")}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PYTHONPATH": str(SRC),
    })
    if display:
        env["DISPLAY"] = ":0"
    return env


def config_path(home: Path) -> Path:
    return home / ".config" / "printcore" / "opener.ini"


def log_file(home: Path) -> Path:
    return home / ".local" / "state" / "printcore" / "log" / "opener.log"


def write_config(home: Path, root: Path, slicer: Path | str | None, server_url: str = "",
                 secret: str = SECRET, extra: str = "") -> Path:
    """Write ``opener.ini`` where platformdirs looks for it under ``home``."""
    path = config_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    slicers = "" if slicer is None else "".join(
        f"{ext} = {slicer}\n" for ext in (".stl", ".gcode.3mf", ".3mf", ".obj", ".gcode"))
    path.write_text(
        f"[opener]\nstorage_root = {root}\nsecret = {secret}\nserver_url = {server_url}\n"
        f"host = test-bench\n{extra}\n[slicers]\n{slicers}", encoding="utf-8")
    return path


def link(file: str = MODEL, job_id: int = JOB_ID, ttl: int = 600, secret: str = SECRET,
         workstation: str = "Front desk") -> str:
    return make_link(secret, job_id, file, int(time.time()) + ttl, workstation)
