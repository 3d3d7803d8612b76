"""Launching: a valid link starts the (fake) slicer with exactly the file's path, with no
shell, detached; the command line refuses bad links with a message and a log line and
starts nothing; a server that cannot be reached does not stop the file from opening."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from _opener_kit import (
    MODEL,
    SECRET,
    SLICED,
    launches,
    link,
    log_file,
    make_fake_slicer,
    make_storage,
    user_env,
    write_config,
)

from entrypoints.opener.cli import choose_feedback, launch, slicer_command, tell_user
from entrypoints.opener.token import Refused

# Shell metacharacters in folder names: a shell anywhere on the way would run them.
ODD = "lab storage; touch PWNED-$(touch PWNED2) `touch PWNED3` & x"


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return make_storage(tmp_path / ODD)


@pytest.fixture()
def slicer(tmp_path: Path) -> tuple[Path, Path]:
    return make_fake_slicer(tmp_path / "slicers dir $(touch PWNED4)")


def _opener(home: Path, *args: str, display: bool = False,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``printcore-open ARGS`` as a browser would start it: no terminal, no stdin."""
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.opener", *args],
        env=user_env(home, display), cwd=home, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout,
    )


def _no_shell_ran(tmp_path: Path) -> None:
    assert not list(tmp_path.rglob("PWNED*")), "a shell interpreted part of a path"


def test_a_valid_link_starts_the_slicer_with_exactly_the_path(
    home: Path, root: Path, slicer: tuple[Path, Path], tmp_path: Path
) -> None:
    program, record = slicer
    write_config(home, root, program)
    result = _opener(home, link(SLICED))
    assert result.returncode == 0, result.stderr
    [started] = launches(record)
    assert started["argv"] == [str((root / SLICED).resolve())]
    _no_shell_ran(tmp_path)
    # Detached: its own session, not the opener's (nor ours), no terminal on stdin.
    assert started["sid"] != os.getsid(0)
    assert started["sid"] == started["pgid"]
    assert started["stdin_tty"] is False
    assert started["cwd"] == str((root / SLICED).resolve().parent)
    text = log_file(home).read_text()
    assert "job 7: opened" in text and "fake slicer" in text


def test_launch_passes_the_argv_without_a_shell(slicer: tuple[Path, Path], tmp_path: Path) -> None:
    program, record = slicer
    odd_file = tmp_path / ODD / "x.stl"
    odd_file.parent.mkdir(parents=True, exist_ok=True)
    odd_file.write_text("solid")
    pid = launch(slicer_command(str(program), odd_file))
    assert pid > 0
    assert launches(record)[0]["argv"] == [str(odd_file)]
    _no_shell_ran(tmp_path)


def test_a_slicer_that_cannot_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Refused) as refused:
        launch([str(tmp_path / "no-such-slicer"), str(tmp_path / "x.stl")])
    assert refused.value.code == "launch_failed"


def test_macos_app_bundles_start_through_launchservices() -> None:
    assert slicer_command("/Applications/OrcaSlicer.app", Path("/m/x.3mf"), "darwin") == [
        "/usr/bin/open", "-a", "/Applications/OrcaSlicer.app", "/m/x.3mf"]
    assert slicer_command("/usr/bin/prusa-slicer", Path("/m/x.3mf"), "linux") == [
        "/usr/bin/prusa-slicer", "/m/x.3mf"]


@pytest.mark.parametrize(
    ("make_url", "code", "words"),
    [
        (lambda: link(secret="someone-elses-secret-123"), 1, "signature does not match"),
        (lambda: link(ttl=-5), 1, "expired"),
        (lambda: link("ReadyToPrint/../x_7.stl"), 1, "printcore gives"),
        (lambda: link(MODEL).replace("job=7", "job=8"), 1, "signature"),
        (lambda: "print3d://open?job=7", 1, "once each"),
        (lambda: "https://example.org/x.stl", 1, "Only print3d://open"),
    ],
)
def test_bad_links_exit_1_say_why_and_start_nothing(
    home: Path, root: Path, slicer: tuple[Path, Path], make_url, code: int, words: str
) -> None:
    program, record = slicer
    write_config(home, root, program)
    result = _opener(home, make_url())
    assert result.returncode == code
    assert words in result.stderr
    assert "refused" in log_file(home).read_text()
    assert not record.exists()


def test_without_a_config_it_says_where_to_put_one(home: Path) -> None:
    result = _opener(home, link())
    assert result.returncode == 2
    expected = home / ".config" / "printcore" / "opener.ini"
    assert str(expected) in result.stderr and "--init-config" in result.stderr


def test_init_config_writes_a_starter_where_it_is_read(home: Path, root: Path) -> None:
    assert _opener(home, "--init-config").returncode == 0
    written = home / ".config" / "printcore" / "opener.ini"
    assert "storage_root =" in written.read_text()
    assert _opener(home, "--init-config").returncode == 1  # never overwrites
    result = _opener(home, "--show-config")
    assert "storage_root is not set" in result.stdout


def test_show_config_masks_the_secret(home: Path, root: Path, slicer: tuple[Path, Path]) -> None:
    write_config(home, root, slicer[0])
    result = _opener(home, "--show-config")
    assert result.returncode == 0
    assert SECRET not in result.stdout and "********" in result.stdout
    assert str(root) in result.stdout


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_still_opens_the_file_and_logs_it(
    home: Path, root: Path, slicer: tuple[Path, Path]
) -> None:
    program, record = slicer
    write_config(home, root, program, server_url=f"http://127.0.0.1:{_closed_port()}")
    result = _opener(home, link())
    assert result.returncode == 0, result.stderr
    assert launches(record)[0]["argv"] == [str((root / MODEL).resolve())]
    assert "could not report" in log_file(home).read_text()


def test_with_no_display_a_refusal_is_logged_and_no_window_is_tried(
    home: Path, root: Path, slicer: tuple[Path, Path]
) -> None:
    write_config(home, root, slicer[0])
    code = (
        "import sys\nfrom entrypoints.opener.cli import main\n"
        f"rc = main([{link(ttl=-5)!r}])\n"
        "print(rc, 'tkinter' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=user_env(home), cwd=home,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["1", "False"], result.stderr
    assert "no console and no display" in log_file(home).read_text()


@pytest.mark.parametrize(
    ("system", "env", "console", "way"),
    [
        ("linux", {}, True, "console"),
        ("linux", {"DISPLAY": ":0"}, True, "console"),
        ("linux", {"DISPLAY": ":0"}, False, "dialog"),
        ("linux", {"WAYLAND_DISPLAY": "wayland-0"}, False, "dialog"),
        ("linux", {}, False, "log"),
        ("win32", {}, False, "dialog"),
        ("darwin", {}, False, "dialog"),
    ],
)
def test_feedback_way(system: str, env: dict[str, str], console: bool, way: str) -> None:
    assert choose_feedback(system, env, console) == way


def test_without_a_console_the_dialog_shows_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(sys, "stderr", open(os.devnull, "w"))  # not a terminal  # noqa: SIM115
    try:
        way = tell_user("The link has expired.", lambda title, text: shown.append((title, text)))
    finally:
        sys.stderr.close()
    assert way == "dialog"
    assert shown == [("printcore: cannot open this file", "The link has expired.")]


def test_a_dialog_that_cannot_open_falls_back_to_the_log(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(title: str, text: str) -> None:
        raise RuntimeError("no display name and no $DISPLAY environment variable")

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(sys, "stderr", open(os.devnull, "w"))  # noqa: SIM115
    try:
        assert tell_user("x", broken) == "log"
    finally:
        sys.stderr.close()


def test_the_opener_imports_only_the_standard_library_and_platformdirs() -> None:
    """Fast start and a small frozen file: nothing of printcore, the web or the database."""
    package = Path(__file__).parents[2] / "src/entrypoints/opener"
    modules = sorted(f"entrypoints.opener.{p.stem}" for p in package.glob("*.py")
                     if p.stem not in ("__init__", "__main__"))  # __main__ runs the opener
    assert "entrypoints.opener.cli" in modules, modules
    code = (
        "import sys\nbefore = set(sys.modules)\nimport entrypoints.opener\n"
        + "".join(f"import {name}\n" for name in modules)
        + "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
                            timeout=60, check=True)
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    stdlib = set(sys.stdlib_module_names)
    assert loaded - stdlib <= {"entrypoints", "platformdirs"}, loaded - stdlib
    assert not loaded & {"printcore", "adapters", "tkinter", "sqlalchemy", "starlette",
                         "attrs", "http"}, loaded
    assert "urllib.request" not in result.stdout.split()
