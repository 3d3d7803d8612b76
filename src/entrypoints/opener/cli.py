"""``printcore-open``: the slicer opener, handler of ``print3d://`` links on staff computers.

    printcore-open URL               check the link and open its file in the slicer
    printcore-open --register        make this program the print3d:// handler (this user)
    printcore-open --unregister      undo --register
    printcore-open --init-config     write a starter opener.ini (see --show-config)
    printcore-open --show-config     the config file, its values (secret masked), the
                                     slicers found and the log file
    --config PATH                    another INI file than the one in the config folder

For a link, in order: its shape, its signature and expiry (with the shared secret), the
file's real path inside the configured storage root, its extension, that it exists, a
slicer for it. Anything refused opens nothing: the reason goes to the log, to the console
when there is one, and otherwise to a small dialog (tkinter; only when a display exists).
Then the slicer starts with the file as its one argument, without a shell, detached; then
the opener reports "opened in slicer" to the server (a failure there is only logged).

Exit codes: 0 opened (or done), 1 link refused, 2 configuration (no config, no slicer),
3 the slicer could not be started.

Imports only the standard library and platformdirs (urllib.request and tkinter only when
needed), so it starts fast and freezes small: never printcore, adapters or their
dependencies.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from entrypoints.opener.config import (
    OpenerConfig,
    Slicer,
    config_template,
    default_config_path,
    detect_slicers,
    load_config,
)
from entrypoints.opener.paths import DEFAULT_EXTENSIONS, extension_of, resolve_job_file
from entrypoints.opener.token import Refused, parse_link, verify

__all__ = ["Opened", "choose_feedback", "launch", "main", "open_link", "slicer_command"]

log = logging.getLogger("printcore.opener")

REPORT_PATH = "/api/v1/slicer/opened"
EXIT_CODES = {"config": 2, "no_slicer": 2, "launch_failed": 3}

Launcher = Callable[[list[str]], int]
Notifier = Callable[[str, str], None]


@dataclass(frozen=True)
class Opened:
    """What was opened: the real ``path``, the ``slicer`` and the started process ``pid``."""

    job_id: int
    path: Path
    slicer: Slicer
    pid: int


# --- launching ----------------------------------------------------------------------------


def slicer_command(program: str, path: Path, system: str | None = None) -> list[str]:
    """The argv that opens ``path`` in ``program``: ``[program, path]``; on macOS a ``.app``
    bundle is started through LaunchServices: ``["/usr/bin/open", "-a", app, path]``."""
    if (system or sys.platform) == "darwin" and program.rstrip("/").endswith(".app"):
        return ["/usr/bin/open", "-a", program, str(path)]
    return [program, str(path)]


def launch(command: list[str]) -> int:
    """Start ``command`` (argv; no shell) detached from the opener: its own session (POSIX)
    or a detached process group (Windows), with no inherited standard streams.

    Returns the pid. Raises Refused(``launch_failed``) when it cannot be started.
    """
    if sys.platform == "win32":
        flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
        new_session = False
    else:
        flags, new_session = 0, True
    try:
        process = subprocess.Popen(  # an argv list and shell=False: no shell ever
            command,
            shell=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            cwd=str(Path(command[-1]).parent),
            creationflags=flags,
            start_new_session=new_session,
        )
    except OSError as err:
        raise Refused("launch_failed", f"Could not start {command[0]}: {err}") from None
    return process.pid


def choose_slicer(config: OpenerConfig, path: Path,
                  detect: Callable[[], list[Slicer]] = detect_slicers) -> Slicer:
    """The configured program for the file's extension, else the first detected slicer
    that opens it. Raises Refused(``no_slicer``)."""
    ext = extension_of(path.name, DEFAULT_EXTENSIONS)
    assert ext is not None  # resolve_job_file checked it
    program = config.slicers.get(ext)
    if program:
        return Slicer(Path(program).stem or program, program, (ext,))
    for slicer in detect():
        if ext in slicer.extensions:
            return slicer
    raise Refused(
        "no_slicer",
        f"No slicer for {ext} files: none of Bambu Studio, OrcaSlicer, PrusaSlicer, Cura was "
        f"found; set one under [slicers] in {config.path}.",
    )


# --- the link -----------------------------------------------------------------------------


def open_link(
    url: str,
    config: OpenerConfig,
    *,
    now: float | None = None,
    launcher: Launcher = launch,
    detect: Callable[[], list[Slicer]] = detect_slicers,
) -> Opened:
    """Check ``url`` against ``config`` and start the slicer on its file.

    ``now`` is UTC epoch seconds (default: the clock). Raises Refused (see
    :data:`entrypoints.opener.token.REFUSAL_CODES`) before anything is started when the
    link, the path or the set-up is not right.
    """
    link = parse_link(url)
    verify(link, config.secret, time.time() if now is None else now)
    path = resolve_job_file(config.storage_root, link.job_id, link.file)
    slicer = choose_slicer(config, path, detect)
    pid = launcher(slicer_command(slicer.program, path))
    log.info("job %s: opened %s in %s (pid %s)", link.job_id, path, slicer.name, pid)
    return Opened(link.job_id, path, slicer, pid)


def report_opened(config: OpenerConfig, url: str, opened: Opened) -> int:
    """POST the "opened in slicer" event to ``<server_url>/api/v1/slicer/opened``:
    ``{"link": url, "host": str, "slicer": str}``; the link's own signature is the
    authorisation (one event per link). Returns the HTTP status; raises OSError
    (urllib's URLError and HTTPError, timeouts) or http.client.HTTPException when the
    server does not take it."""
    import json
    import urllib.request

    assert config.server_url is not None
    body = json.dumps({"link": url, "host": config.host, "slicer": opened.slicer.name})
    request = urllib.request.Request(
        config.server_url + REPORT_PATH,
        data=body.encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "printcore-open/1"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=config.report_timeout) as response:
        return int(response.status)


# --- feedback -----------------------------------------------------------------------------


def choose_feedback(system: str, env: dict[str, str] | os._Environ[str],
                    console: bool) -> str:
    """How to tell the user about a refusal: ``console`` (a terminal is attached),
    ``dialog`` (no terminal, a display exists: Windows, macOS, or ``DISPLAY`` /
    ``WAYLAND_DISPLAY`` set), or ``log`` (neither: the log file only)."""
    if console:
        return "console"
    if system in ("win32", "darwin") or env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return "dialog"
    return "log"


def show_dialog(title: str, message: str) -> None:
    """A small modal error box (tkinter). Raises whatever tkinter raises without a display."""
    import tkinter
    from tkinter import messagebox

    root = tkinter.Tk()
    root.withdraw()
    try:
        messagebox.showerror(title, message, parent=root)
    finally:
        root.destroy()


def say(text: str) -> None:
    """Print ``text``; in a windowed build (no standard output: Windows, clicked) show it
    in an information box instead."""
    if sys.stdout is not None:
        print(text)
        return
    try:
        import tkinter
        from tkinter import messagebox

        root = tkinter.Tk()
        root.withdraw()
        messagebox.showinfo("printcore-open", text, parent=root)
        root.destroy()
    except Exception as err:  # no display: the log has it
        log.info("%s (not shown: %s)", text, err)


def tell_user(message: str, dialog: Notifier = show_dialog) -> str:
    """Log ``message`` and show it the way :func:`choose_feedback` picks; returns that way."""
    console = bool(sys.stderr is not None and sys.stderr.isatty())
    way = choose_feedback(sys.platform, os.environ, console)
    if sys.stderr is not None:
        print(f"printcore-open: {message}", file=sys.stderr)
    if way == "dialog":
        try:
            dialog("printcore: cannot open this file", message)
        except Exception as err:  # no Tk, or the display went away: the log has it
            log.warning("could not show the dialog: %s", err)
            way = "log"
    elif way == "log":
        log.info("no console and no display: the message is in this log only")
    return way


# --- logging ------------------------------------------------------------------------------


def log_path() -> Path:
    """``<user log folder>/opener.log`` (platformdirs; e.g. ``~/.local/state/printcore/log``)."""
    import platformdirs

    return platformdirs.user_log_path("printcore", appauthor=False) / "opener.log"


def setup_logging(path: Path | None = None) -> Path | None:
    """Log to a rotating file (1 MB, 3 old files kept). Returns its path, or None when the
    folder cannot be written (then logging goes to standard error only)."""
    from logging.handlers import RotatingFileHandler

    path = path or log_path()
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(
            path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler()
        path = None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    return path


# --- the command --------------------------------------------------------------------------


def _run_link(url: str, config_path: Path, notify: Notifier) -> int:
    log.info("link: %s", url[:600])
    try:
        config = load_config(config_path)
        opened = open_link(url, config)
    except Refused as refused:
        log.warning("refused (%s): %s", refused.code, refused.message)
        tell_user(refused.message, notify)
        return EXIT_CODES.get(refused.code, 1)
    if config.server_url:
        try:
            status = report_opened(config, url, opened)
            log.info("reported to %s: HTTP %s", config.server_url, status)
        except Exception as err:  # unreachable, refused, HTTP error: the file is open anyway
            detail = getattr(err, "read", None)
            extra = detail().decode("utf-8", "replace")[:300] if callable(detail) else ""
            log.warning("could not report to %s: %s %s", config.server_url, err, extra)
    return 0


def _show_config(config_path: Path) -> int:
    lines = [f"config file: {config_path}", f"log file:    {log_path()}"]
    try:
        config = load_config(config_path)
    except Refused as refused:
        lines.append(f"  ! {refused.message}")
    else:
        mounted = "" if config.storage_root.is_dir() else "  (! not a folder here)"
        lines += [
            f"storage_root = {config.storage_root}{mounted}",
            "secret       = ********",
            f"server_url   = {config.server_url or '(none: no report)'}",
            f"host         = {config.host}",
            *(f"slicer {ext:<11} {program}" for ext, program in sorted(config.slicers.items())),
        ]
    lines += [f"found {s.name}: {s.program} ({' '.join(s.extensions)})" for s in detect_slicers()]
    say("\n".join(lines))
    return 0


def _init_config(config_path: Path) -> int:
    if config_path.exists():
        say(f"{config_path} exists already; edit it instead.")
        return 1
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(config_template(), encoding="utf-8")
    say(f"wrote {config_path}: set storage_root and secret in it.")
    return 0


def main(argv: Sequence[str] | None = None, notify: Notifier = show_dialog) -> int:
    """The ``printcore-open`` command; returns the exit code (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="printcore-open",
        description="Open a print3d:// link from the printcore dashboard in a slicer.",
    )
    parser.add_argument("url", nargs="?", help="a print3d://open?... link")
    parser.add_argument("--config", type=Path, help="the INI file (default: the user's)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--register", action="store_true", help="handle print3d:// links")
    group.add_argument("--unregister", action="store_true", help="stop handling them")
    group.add_argument("--init-config", action="store_true", help="write a starter INI")
    group.add_argument("--show-config", action="store_true", help="show the set-up")
    args = parser.parse_args(argv)
    config_path = args.config or default_config_path()
    setup_logging()
    if args.register or args.unregister:
        from entrypoints.opener.register import register, unregister

        try:
            say(register() if args.register else unregister())
        except Refused as refused:
            log.warning("registration: %s", refused.message)
            print(f"printcore-open: {refused.message}", file=sys.stderr)
            return 2
        return 0
    if args.init_config:
        return _init_config(config_path)
    if args.show_config:
        return _show_config(config_path)
    if not args.url:
        parser.print_usage(sys.stderr)
        tell_user("No link given: run printcore-open with a print3d:// link.", notify)
        return 1
    return _run_link(args.url, config_path, notify)


if __name__ == "__main__":
    raise SystemExit(main())
