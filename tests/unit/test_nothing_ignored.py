"""No file of the source tree is hidden from git by ``.gitignore``.

A fresh clone must hold everything the app serves: a too-broad ignore rule (``build/``)
once kept three.js's ``build/`` folder out of the repository, so the 3D view worked in
the work tree and failed in every clone. Checked with ``git ls-files --ignored``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_no_source_file_is_ignored() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("this test needs git and a git checkout of printcore")
    out = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", "src"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split("\n")
    hidden = [p for p in out if p and "__pycache__" not in p and not p.endswith(".pyc")
              and ".egg-info/" not in p]
    assert hidden == [], f"ignored by .gitignore, so missing from every clone: {hidden}"
