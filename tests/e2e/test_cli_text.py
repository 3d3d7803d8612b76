"""The command line's text check (printcore.text's rule, once in ``main``): an argument
that is not UTF-8 (arrives as lone surrogates), or holds a control character, is refused
with exit 1 and a message naming the argument; nothing is changed.

Tried: ``staff add`` with ESC, NUL-free C0 (BEL), DEL, and the raw bytes ``\\xff\\xfe``;
``queue join`` with a BEL in the job name; a good non-ASCII name is accepted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(home: Path, *args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PRINTCORE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", *args], env=env,
                          capture_output=True, timeout=120, check=False)


@pytest.mark.parametrize("bad", ["\x1b[31mEve", "Bell\x07", "Del\x7f", b"Caf\xff\xfe"])
def test_bad_arguments_are_refused_and_change_nothing(tmp_path: Path, bad: str | bytes) -> None:
    done = _run(tmp_path, "staff", "add", bad)
    assert done.returncode == 1, done
    err = done.stderr.decode()
    assert "argument 3" in err and "Nothing was changed" in err
    listed = _run(tmp_path, "staff", "list", "--all")
    assert listed.returncode == 0 and listed.stdout.strip() == b""


def test_a_good_non_ascii_name_is_accepted(tmp_path: Path) -> None:
    assert _run(tmp_path, "staff", "add", "Zoë Ångström").returncode == 0
    assert "Zoë Ångström" in _run(tmp_path, "staff", "list").stdout.decode()
    done = _run(tmp_path, "queue", "join", "ann", "brack\x07et", "1h", "--name", "Ann")
    assert done.returncode == 1 and "argument 4" in done.stderr.decode()
    assert b"brack" not in _run(tmp_path, "queue", "status").stdout
