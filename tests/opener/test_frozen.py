"""The one-file executable from packaging/ (PyInstaller): built once per source version
(cached under the system temp folder, keyed by a hash of the opener's sources, the spec,
PyInstaller's and Python's versions), then run on a valid link with the fake slicer and on
a forged one, with no access to the source tree."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from _opener_kit import (
    MODEL,
    SLICED,
    launches,
    link,
    log_file,
    make_fake_slicer,
    make_storage,
    user_env,
    write_config,
)

from _support import PROJECT_ROOT, service_missing

pytestmark = pytest.mark.slow

SOURCES = [
    "packaging/printcore-open.spec",
    "packaging/build.py",
    "packaging/printcore_open.py",
    "src/entrypoints/__init__.py",
    *sorted(p.relative_to(PROJECT_ROOT).as_posix()
            for p in (PROJECT_ROOT / "src/entrypoints/opener").glob("*.py")),
]


def _source_key() -> str:
    import PyInstaller

    digest = hashlib.sha256()
    for rel in SOURCES:
        digest.update(rel.encode() + b"\0" + (PROJECT_ROOT / rel).read_bytes() + b"\0")
    digest.update(f"{PyInstaller.__version__} {sys.version} {sys.platform}".encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def frozen() -> Path:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        service_missing("PyInstaller is not installed (pip install -e '.[test]')")
    cache = Path(tempfile.gettempdir()) / "printcore-test-cache" / f"opener-{_source_key()}"
    name = "printcore-open.exe" if sys.platform == "win32" else "printcore-open"
    exe = cache / "dist" / name
    if not exe.is_file():
        for old in cache.parent.glob("opener-*"):  # builds of earlier sources
            shutil.rmtree(old, ignore_errors=True)
        result = subprocess.run(
            [sys.executable, str(PROJECT_ROOT / "packaging" / "build.py"),
             "--dist", str(cache / "building"), "--work", str(cache / "work")],
            capture_output=True, text=True, timeout=900,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        (cache / "building").rename(cache / "dist")
        shutil.rmtree(cache / "work", ignore_errors=True)
    return exe


def _env(home: Path) -> dict[str, str]:
    env = user_env(home)
    env.pop("PYTHONPATH")  # the executable must carry everything it needs
    return env


def test_the_executable_opens_a_valid_link_and_refuses_a_forged_one(
    frozen: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    root = make_storage(tmp_path / "storage")
    program, record = make_fake_slicer(tmp_path / "slicer")
    write_config(home, root, program)

    forged = subprocess.run([str(frozen), link(SLICED).replace("job=7", "job=70")],
                            env=_env(home), cwd=tmp_path, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=120)
    assert forged.returncode == 1, forged.stderr
    assert "signature" in forged.stderr
    assert not record.exists()

    result = subprocess.run([str(frozen), link(MODEL)], env=_env(home), cwd=tmp_path,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert launches(record)[0]["argv"] == [str((root / MODEL).resolve())]
    assert "job 7: opened" in log_file(home).read_text()


def test_the_executable_is_one_small_file(frozen: Path) -> None:
    assert frozen.is_file()
    assert frozen.stat().st_size < 30_000_000
