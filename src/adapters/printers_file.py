"""The lab's self-service printers, from a YAML file (names and labels only)::

    printers:
      - name: X1C-1
        label: Bambu Lab X1 Carbon, bench 1
      - name: X1C-2
        label: Bambu Lab X1 Carbon, bench 2

``name`` is what members type in ``/claim`` (1-32 characters: letters, digits, ``-``,
``_``, ``.``; unique ignoring case); ``label`` is shown beside it (optional, ≤ 100
characters). A bare string item (``- X1C-3``) is a name without a label. The file is
synced into the database at start when it changed since the last sync (see
:func:`fingerprint`): new names are added, labels updated.
A printer removed from the file stays in the database (its history is kept); staff take
it out of service on the printers page.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

__all__ = ["STARTER", "PrintersFileError", "fingerprint", "read_printers", "write_starter"]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")

#: Written when no printers file exists yet: three Bambu Lab X1 Carbon.
STARTER = """\
# The lab's self-service printers (printcore). Names are what members type in /claim.
# Edit and restart printcore (web, bot) to apply; removed printers keep their history.
printers:
  - name: X1C-1
    label: Bambu Lab X1 Carbon 1
  - name: X1C-2
    label: Bambu Lab X1 Carbon 2
  - name: X1C-3
    label: Bambu Lab X1 Carbon 3
"""


class PrintersFileError(ValueError):
    """The printers file cannot be used; the message names the file, the item and why."""


def write_starter(path: Path) -> bool:
    """Create ``path`` with :data:`STARTER` if it does not exist; True when written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as handle:
        handle.write(STARTER)
    return True


def fingerprint(path: Path) -> str | None:
    """What the file is now: ``"PATH|SIZE|MTIME_NS|SHA256"`` (resolved path, bytes,
    modification time in ns, hash of the bytes), or None when it cannot be read (the
    sync then reads it and reports why). Equal fingerprints mean the sync would change
    nothing; any edit, touch or move makes it differ."""
    try:
        resolved = path.resolve()
        stat = resolved.stat()
        digest = hashlib.sha256(resolved.read_bytes()).hexdigest()
    except OSError:
        return None
    return f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}|{digest}"


def read_printers(path: Path) -> list[tuple[str, str]]:
    """``[(name, label), …]`` in file order. Raises PrintersFileError."""
    import yaml  # only when the file is read (not on every command's start)

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PrintersFileError(f"Cannot read the printers file {path}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise PrintersFileError(f"The printers file {path} is not UTF-8 text.") from None
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise PrintersFileError(f"The printers file {path} is not valid YAML{line}.") from None
    items = data.get("printers") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise PrintersFileError(
            f"The printers file {path} needs a 'printers:' list, e.g.\n{STARTER}")
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, item in enumerate(items, start=1):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or set(item) - {"name", "label"}:
            raise PrintersFileError(
                f"{path}, printer {n}: give 'name' (and optionally 'label'), nothing else.")
        name = str(item.get("name") or "").strip()
        label = " ".join(str(item.get("label") or "").split())
        if not NAME.match(name):
            raise PrintersFileError(
                f"{path}, printer {n}: name {name!r} must be 1-32 letters, digits, '-', '_' "
                "or '.', starting with a letter or digit.")
        if len(label) > 100:
            raise PrintersFileError(f"{path}, printer {n}: the label is over 100 characters.")
        if name.lower() in seen:
            raise PrintersFileError(f"{path}: printer name {name!r} appears twice.")
        seen.add(name.lower())
        found.append((name, label))
    return found
