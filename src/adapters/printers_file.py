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

Watched printers (issue 15; docs/printers.md). A printer may also say where the printer
watcher (``printcore watch``) finds it on the LAN; one without ``serial`` and ``host``
stays member-reported::

    watch:                        # optional; these are the defaults
      offline_after_seconds: 330  # no message for this long: offline
      debounce_seconds: 5         # PAUSE or a lost connection shorter than this: unsaid
      pushall_seconds: 300        # ask for a full report at most this often (>= 300)
    printers:
      - name: X1C-1
        serial: 00M09A350100123   # on the printer's screen (and in its certificate)
        host: 192.0.2.50          # its LAN address or host name
        port: 8883                # default 8883
        tls: true                 # default true; false only for a plain test broker
        fingerprint: 3a...        # SHA-256 of its certificate, written by
                                  # ``printcore printers trust X1C-1``

:func:`read_watch_config` reads these; :func:`read_printers` accepts them and still
answers names and labels only. Access codes are never in this file (see
``adapters.bambu.secrets``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import attrs

__all__ = ["STARTER", "WATCH_KEYS", "PrintersFileError", "WatchConfig", "WatchedPrinter",
           "fingerprint", "normalise_fingerprint", "read_printers", "read_watch_config",
           "set_fingerprint", "write_starter"]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
#: The per-printer keys of the printer watcher (issue 15), beside ``name`` and ``label``.
WATCH_KEYS = frozenset({"serial", "host", "port", "tls", "fingerprint"})

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
    return [(name, label) for name, label, _ in _read(path)[1]]


def _read(path: Path) -> tuple[dict[str, Any], list[tuple[str, str, dict[str, Any]]]]:
    """The file's top-level mapping and ``[(name, label, item), …]``, names and labels
    checked. Raises PrintersFileError."""
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
    found: list[tuple[str, str, dict[str, Any]]] = []
    seen: set[str] = set()
    for n, item in enumerate(items, start=1):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or set(item) - {"name", "label"} - WATCH_KEYS:
            raise PrintersFileError(
                f"{path}, printer {n}: give 'name' (and optionally 'label', and for a "
                "watched printer 'serial', 'host', 'port', 'tls', 'fingerprint'), "
                "nothing else.")
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
        found.append((name, label, item))
    return data, found


SERIAL = re.compile(r"^[A-Za-z0-9]{4,40}$")
HOST = re.compile(r"^[A-Za-z0-9_.:\[\]-]{1,253}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: Watcher-wide settings: key → (default, lowest, highest), seconds.
WATCH_DEFAULTS: dict[str, tuple[float, float, float]] = {
    "offline_after_seconds": (330.0, 10.0, 86_400.0),
    "debounce_seconds": (5.0, 0.0, 300.0),
    "pushall_seconds": (300.0, 300.0, 86_400.0),
}


def normalise_fingerprint(text: str) -> str | None:
    """A SHA-256 fingerprint as 64 lower-case hex digits, from any of ``3a4b…``,
    ``3A:4B:…`` or ``sha256:3a4b…``; None when it is not one."""
    value = text.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:"):]
    value = value.replace(":", "").replace(" ", "")
    return value if _HEX64.match(value) else None


@attrs.frozen
class WatchedPrinter:
    """One printer the watcher connects to: its queue ``name``, ``serial`` (the MQTT
    topics ``device/{serial}/…``), ``host`` and ``port`` of its MQTT broker, ``tls``
    (False only for a plain test broker) and ``fingerprint`` (64 hex digits, SHA-256 of
    its DER certificate, or None until ``printcore printers trust NAME``)."""

    name: str
    serial: str
    host: str
    port: int = 8883
    tls: bool = True
    fingerprint: str | None = None


@attrs.frozen
class WatchConfig:
    """The printers file's watch settings: the ``watched`` printers, the names of the
    ``member_reported`` ones (no ``serial``/``host``), and the watcher-wide seconds."""

    watched: tuple[WatchedPrinter, ...]
    member_reported: tuple[str, ...]
    offline_after_seconds: float = 330.0
    debounce_seconds: float = 5.0
    pushall_seconds: float = 300.0

    def printer(self, name: str) -> WatchedPrinter | None:
        """The watched printer called ``name`` (any case), or None."""
        return next((p for p in self.watched if p.name.lower() == name.lower()), None)


def _watched(path: Path, n: int, name: str, item: dict[str, Any]) -> WatchedPrinter | None:
    where = f"{path}, printer {n} ({name})"
    given = set(item) & WATCH_KEYS
    if not given:
        return None
    serial, host = item.get("serial"), item.get("host")
    if serial is None or host is None:
        raise PrintersFileError(f"{where}: a watched printer needs both 'serial' and 'host' "
                                "(remove the others to keep it member-reported).")
    serial = str(serial).strip()
    if not SERIAL.match(serial):
        raise PrintersFileError(f"{where}: serial {serial!r} must be 4-40 letters and digits "
                                "(as on the printer's screen).")
    host = str(host).strip()
    if not HOST.match(host):
        raise PrintersFileError(f"{where}: host {host!r} is not a host name or IP address.")
    port = item.get("port", 8883)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise PrintersFileError(f"{where}: port {port!r} must be a number from 1 to 65535.")
    tls = item.get("tls", True)
    if not isinstance(tls, bool):
        raise PrintersFileError(f"{where}: tls must be true or false, not {tls!r}.")
    raw = item.get("fingerprint")
    fp: str | None = None
    if raw is not None and str(raw).strip():
        fp = normalise_fingerprint(str(raw))
        if fp is None:
            raise PrintersFileError(
                f"{where}: fingerprint must be the certificate's SHA-256 (64 hex digits); "
                f"run `printcore printers trust {name}` to write it.")
    return WatchedPrinter(name=name, serial=serial, host=host, port=port, tls=tls,
                          fingerprint=fp)


def read_watch_config(path: Path) -> WatchConfig:
    """The watch settings of the printers file at ``path`` (see the module's doc).

    Raises PrintersFileError for anything :func:`read_printers` refuses, a watched printer
    without both ``serial`` and ``host``, a bad serial, host, port, ``tls`` or
    fingerprint, a serial given twice, or a ``watch:`` value out of range."""
    data, items = _read(path)
    watched: list[WatchedPrinter] = []
    member: list[str] = []
    serials: dict[str, str] = {}
    for n, (name, _label, item) in enumerate(items, start=1):
        printer = _watched(path, n, name, item)
        if printer is None:
            member.append(name)
            continue
        other = serials.setdefault(printer.serial.upper(), name)
        if other != name:
            raise PrintersFileError(f"{path}: serial {printer.serial} is given for both "
                                    f"{other} and {name}.")
        watched.append(printer)
    section = data.get("watch") or {}
    if not isinstance(section, dict) or set(section) - set(WATCH_DEFAULTS):
        raise PrintersFileError(f"{path}: 'watch:' takes only "
                                + ", ".join(sorted(WATCH_DEFAULTS)) + " (seconds).")
    values: dict[str, float] = {}
    for key, (default, low, high) in WATCH_DEFAULTS.items():
        value = section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not low <= value <= high:
            raise PrintersFileError(f"{path}: watch: {key} must be seconds from {low:g} to "
                                    f"{high:g}, not {value!r}.")
        values[key] = float(value)
    return WatchConfig(watched=tuple(watched), member_reported=tuple(member), **values)


def set_fingerprint(path: Path, name: str, fp: str) -> None:
    """Write ``fingerprint: <fp>`` into printer ``name``'s item of the file at ``path``,
    replacing one that is there, and keeping every other line (comments included) as it
    was. The file is replaced atomically and read back.

    Raises PrintersFileError when the file or the printer cannot be found, the printer's
    item is not a block mapping (``- name: …`` lines), or ``fp`` is not a fingerprint."""
    import os
    import tempfile

    import yaml

    digits = normalise_fingerprint(fp)
    if digits is None:
        raise PrintersFileError(f"{fp!r} is not a SHA-256 fingerprint.")
    value = f'"{digits}"'  # quoted: YAML must never read the digits as a number
    _read(path)  # the file is valid before we touch it
    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text)
    items = next((v for k, v in root.value if k.value == "printers"), None)
    target = None
    for node in items.value if items is not None else ():
        if isinstance(node, yaml.MappingNode):
            names = [v.value for k, v in node.value if k.value == "name"]
            if names and str(names[0]).strip().lower() == name.lower():
                target = node
    if target is None:
        raise PrintersFileError(f"{path}: no printer {name!r} written as '- name: {name}' "
                                "lines; add its serial and host first.")
    if target.flow_style:
        raise PrintersFileError(f"{path}: printer {name} is written on one line "
                                "({...}); write its keys one per line to trust it.")
    lines = text.splitlines(keepends=True)
    existing = next(((k, v) for k, v in target.value if k.value == "fingerprint"), None)
    if existing is not None:
        key_node, value_node = existing
        row = key_node.start_mark.line
        line = lines[row]
        end = value_node.end_mark.column if value_node.end_mark.line == row else len(
            line.rstrip("\r\n"))
        lines[row] = (line[:value_node.start_mark.column] + value + line[end:]
                      if value_node.value else
                      line[:key_node.end_mark.column] + ": " + value
                      + line[len(line.rstrip("\r\n")):])
    else:
        first_key = target.value[0][0]
        indent = " " * first_key.start_mark.column
        last = max(v.end_mark.line - (1 if v.end_mark.column == 0 else 0)
                   for _, v in target.value)
        last = min(last, len(lines) - 1)
        if not lines[last].endswith("\n"):
            lines[last] += "\n"
        lines.insert(last + 1, f"{indent}fingerprint: {value}\n")
    new_text = "".join(lines)
    folder = path.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=".printers-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new_text)
        tmp_path = Path(tmp)
        written = read_watch_config(tmp_path).printer(name)
        if written is None or written.fingerprint != digits:
            raise PrintersFileError(f"{path}: could not write the fingerprint of {name} "
                                    f"safely; add 'fingerprint: {value}' by hand.")
        try:
            os.chmod(tmp, path.stat().st_mode & 0o777)
        except OSError:
            pass
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
