"""Build the one-file slicer opener with PyInstaller, for the system this runs on.

    python packaging/build.py [--dist DIR] [--work DIR]

Needs ``pip install -e '.[test]'`` (which pins PyInstaller). Writes
``DIR/printcore-open`` (``printcore-open.exe`` on Windows; on macOS also
``DIR/printcore-open.app``) and prints its path. PyInstaller does not cross-compile:
run this on Windows for Windows, on macOS for macOS, on Linux for Linux.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = HERE / "printcore-open.spec"


def build(dist: Path, work: Path) -> Path:
    """Run PyInstaller on the spec; returns the executable's path. Raises
    CalledProcessError when PyInstaller fails (its output is on the console)."""
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", str(dist), "--workpath", str(work), str(SPEC)],
        check=True,
    )
    name = "printcore-open.exe" if sys.platform == "win32" else "printcore-open"
    return dist / name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=HERE.parent / "dist")
    parser.add_argument("--work", type=Path, default=HERE.parent / "build" / "pyinstaller")
    args = parser.parse_args()
    print(build(args.dist.resolve(), args.work.resolve()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
