"""PyPI has unrelated packages named ``adapters`` and ``entrypoints`` (DESIGN.md): make sure
the ones imported are this repository's, and that no such distribution is installed."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
OURS = ("adapters", "entrypoints", "printcore")


def _locations(name: str) -> list[Path]:
    module = importlib.import_module(name)
    if module.__file__ is not None:
        return [Path(module.__file__).resolve()]
    # A namespace package (no __init__.py yet) has only __path__.
    return [Path(p).resolve() for p in module.__path__]


@pytest.mark.parametrize("name", OURS)
def test_the_imported_package_is_this_repositorys(name: str) -> None:
    locations = _locations(name)
    assert locations
    for location in locations:
        assert location.is_relative_to(SRC / name), f"{name} is imported from {location}"


@pytest.mark.parametrize("name", ["adapters", "entrypoints"])
def test_no_distribution_of_that_name_is_installed(name: str) -> None:
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution(name)


@pytest.mark.parametrize("name", OURS)
def test_only_printcore_provides_our_top_level_names(name: str) -> None:
    """No other installed distribution ships a top-level ``adapters``/``entrypoints`` module."""
    providers = set(importlib.metadata.packages_distributions().get(name, []))
    assert providers <= {"printcore"}, f"{name} is also provided by {providers - {'printcore'}}"
