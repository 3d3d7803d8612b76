"""Where the watcher finds each printer's LAN access code (never in the printers file).

1. The environment: ``PRINTCORE_BAMBU_ACCESS_CODE_<NAME>``, where ``<NAME>`` is the
   printer's name upper-cased with ``-`` and ``.`` written as ``_`` (``X1C-1`` →
   ``PRINTCORE_BAMBU_ACCESS_CODE_X1C_1``).
2. Else the secrets file named by ``PRINTCORE_BAMBU_SECRETS_FILE``: one ``NAME=CODE`` per
   line (names in any case), ``#`` comments and blank lines allowed, e.g.::

       # printcore printer access codes (chmod 600)
       X1C-1=12345678
       P1S-2=87654321

The access code is the 8-character code on the printer's screen (X1: Settings → Network;
P1/A1: Settings → WLAN / LAN Only). It is the MQTT password of user ``bblp``.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from pathlib import Path

import structlog

__all__ = ["ENV_PREFIX", "SECRETS_FILE_ENV", "AccessCodeError", "access_code", "env_name",
           "read_secrets_file"]

ENV_PREFIX = "PRINTCORE_BAMBU_ACCESS_CODE_"
SECRETS_FILE_ENV = "PRINTCORE_BAMBU_SECRETS_FILE"
_CODE = re.compile(r"^[!-~]{1,64}$")  # printable ASCII, no spaces
_log = structlog.get_logger("printcore.bambu")


class AccessCodeError(ValueError):
    """The secrets file cannot be read, or a line of it is not ``NAME=CODE``."""


def env_name(printer: str) -> str:
    """The environment variable holding ``printer``'s access code."""
    return ENV_PREFIX + re.sub(r"[-.]", "_", printer.upper())


def read_secrets_file(path: Path) -> dict[str, str]:
    """``{name lower-cased: code}`` from a secrets file. Raises AccessCodeError naming the
    file and line. Warns (log) when the file can be read by group or others."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise AccessCodeError(f"Cannot read the printer secrets file {path}: {exc}.") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning("printer secrets file is readable by others; chmod 600 it",
                     path=str(path))
    codes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, code = line.partition("=")
        name, code = name.strip(), code.strip()
        if not sep or not name or not _CODE.match(code):
            raise AccessCodeError(f"{path}, line {number}: write NAME=CODE (the access code "
                                  "as on the printer's screen, no spaces).")
        codes[name.lower()] = code
    return codes


def access_code(printer: str, environ: Mapping[str, str]) -> str | None:
    """``printer``'s access code from ``environ`` or the secrets file it names, or None.
    Raises AccessCodeError for a bad secrets file."""
    code = (environ.get(env_name(printer)) or "").strip()
    if code:
        return code
    secrets = (environ.get(SECRETS_FILE_ENV) or "").strip()
    if secrets:
        return read_secrets_file(Path(secrets)).get(printer.lower())
    return None
