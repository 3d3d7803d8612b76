"""printcore is the pure domain (DESIGN.md, "the dependency rule"): it imports only the
standard library, attrs and python-statemachine, and importing it loads nothing else."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import printcore

PACKAGE = Path(printcore.__file__).resolve().parent

#: Technologies that live in adapters only, and the outer layers themselves.
FORBIDDEN = frozenset(
    {
        "sqlalchemy",
        "alembic",
        "psycopg",
        "starlette",
        "discord",
        "dramatiq",
        "redis",
        "cattrs",
        "jinja2",
        "httpx",
        "uvicorn",
        "trimesh",
        "numpy",
        "itsdangerous",
        "argon2",
        "email_validator",
        "structlog",
        "yaml",
        "dotenv",
        "platformdirs",
        "multipart",
        "adapters",
        "entrypoints",
    }
)
#: Beside the standard library, the only top-level imports printcore may use.
THIRD_PARTY_ALLOWED = frozenset({"attrs", "attr", "statemachine", "printcore"})

MODULES = sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _is_allowed(top: str) -> bool:
    return top == "__future__" or top in sys.stdlib_module_names or top in THIRD_PARTY_ALLOWED


def test_there_are_modules_to_check() -> None:
    names = {p.name for p in MODULES}
    assert {"__init__.py", "lifecycle.py", "service.py", "memory.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_printcore_imports_only_stdlib_attrs_and_statemachine(path: Path) -> None:
    bad = [(line, top) for line, top in _imports(path) if not _is_allowed(top)]
    assert bad == [], f"{path.name} imports outside the domain's allowed set: {bad}"
    assert not {top for _, top in _imports(path)} & FORBIDDEN


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_printcore_does_not_import_by_name_at_run_time(path: Path) -> None:
    """``importlib.import_module("sqlalchemy")`` would slip past the import check."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    dynamic = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id in {"__import__", "import_module"})
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
        )
    ]
    if path.name == "__init__.py" and path.parent == PACKAGE:
        # The package's lazy names (PEP 562) import from its own modules only: the map
        # it imports from holds nothing but printcore submodules.
        import printcore

        assert all(m.startswith("printcore.") for m in printcore._WHERE.values())
        assert len(dynamic) == 1
        return
    assert dynamic == [], f"{path.name} imports dynamically at lines {dynamic}"


_PROBE = """
import importlib, json, pkgutil, sys
import printcore
for info in pkgutil.walk_packages(printcore.__path__, "printcore."):
    importlib.import_module(info.name)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_importing_all_of_printcore_loads_no_adapter_technology(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert "printcore" in loaded
    assert loaded & FORBIDDEN == set()
    # site may load its own helpers (e.g. setuptools' _distutils_hack via a .pth file)
    # zoneinfo reads sysconfig, which loads the platform's generated _sysconfigdata_* module
    extra = {m for m in loaded if not _is_allowed(m) and not m.startswith("_sysconfigdata")}
    extra -= {"__main__", "_distutils_hack"}
    assert extra == set(), f"importing printcore loaded {sorted(extra)}"
