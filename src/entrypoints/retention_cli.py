"""``printcore retention --older-than DAYS [--archive DIR] [--apply]`` (issue 13).
Registration point."""

from __future__ import annotations

from typing import Any

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    """Add ``retention`` to the top-level subparsers ``sub``."""
    del sub
