"""The layering as rules (CONVENTIONS.md #13), checked on every run:

* the import-linter contracts in pyproject.toml ``[tool.importlinter]``: entrypoints →
  adapters → printcore with no arrow back up; the print-request flow and the queue flow
  do not import each other; printcore's shared root imports neither flow; the slicer
  opener imports nothing of the server (its standard-library-plus-platformdirs budget is
  checked by tests/opener/test_launch.py);
* no import circles between modules (a module may import its own package's
  ``__init__``, which re-exports it);
* docs/architecture.md's package picture is the one these imports draw.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grimp

from _support import PROJECT_ROOT

ROOTS = ("printcore", "adapters", "entrypoints")
ARCHITECTURE = PROJECT_ROOT / "docs" / "architecture.md"


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*ROOTS)


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def module_edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    def ancestors(module: str) -> set[str]:
        parts = module.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts))}

    return {m: set(graph.find_modules_directly_imported_by(m)) - ancestors(m)
            for m in graph.modules}


def package_edges(graph: grimp.ImportGraph) -> set[tuple[str, str]]:
    """Arrows between the architecture's boxes: the three roots, printcore's two flows and
    its shared root (``printcore.*`` outside the flows; the ``printcore`` facade itself,
    which re-exports the public API, is left out)."""

    def box(module: str) -> str | None:
        parts = module.split(".")
        if parts[0] != "printcore":
            return parts[0]
        if len(parts) == 1:
            return None
        if parts[1] in ("requests", "queue"):
            return f"printcore.{parts[1]}"
        return "printcore (shared)"

    arrows = set()
    for source, targets in module_edges(graph).items():
        for target in targets:
            a, b = box(source), box(target)
            if a and b and a != b:
                arrows.add((a, b))
    return arrows


def mermaid(arrows: set[tuple[str, str]]) -> str:
    ids = {"entrypoints": "E", "adapters": "A", "printcore.requests": "R",
           "printcore.queue": "Q", "printcore (shared)": "S"}
    lines = ["flowchart TD"]
    lines += [f'    {ids[n]}["{n}"]' for n in ids]
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in sorted(arrows)]
    return "\n".join(lines) + "\n"


def test_the_import_linter_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(PROJECT_ROOT / "pyproject.toml")],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout, done.stdout


def test_no_import_circles() -> None:
    assert circles(module_edges(_graph())) == []


def test_the_circle_finder_finds_circles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": set()}
    assert circles(edges) == [["a", "b", "c"]]


def test_the_architecture_picture_is_the_one_the_imports_draw() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    match = re.search(r"<!-- packages:begin -->\n```mermaid\n(.*?)```\n<!-- packages:end -->",
                      text, re.S)
    assert match, "docs/architecture.md has no generated package picture"
    expected = mermaid(package_edges(_graph()))
    assert match.group(1) == expected, f"regenerate the picture:\n{expected}"


def test_the_rule_table_points_at_files_that_exist() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    table = text.split("## Where is the rule for", 1)[1]
    paths = re.findall(r"`(src/[\w/]+\.py)`", table)
    assert len(paths) >= 10
    missing = [p for p in paths if not (PROJECT_ROOT / p).is_file()]
    assert missing == []
