"""``printcore watch`` (run the printer watcher) and ``printcore printers trust NAME``
(capture a printer's certificate fingerprint on first contact). Issue 15; see
docs/printers.md."""

from __future__ import annotations

import argparse

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``watch`` and ``printers`` on the top-level parser."""
