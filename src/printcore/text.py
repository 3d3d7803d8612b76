"""Which texts printcore accepts, decided once and used by every entry point.

A text is accepted when it can be encoded as UTF-8 (no lone UTF-16 surrogates, which
JSON's ``"\\udfff"`` escapes and some decoders produce) and holds no control character
(Unicode category ``Cc``: NUL, ESC, DEL, C1 controls…). Newline, carriage return and tab
are allowed only in multi-line texts (notes, reasons).

Stored texts from before this rule (an upgraded lab) are shown through
:func:`displayable`, which replaces what cannot be encoded with U+FFFD.
"""

from __future__ import annotations

import re
import unicodedata

from printcore.errors import InvalidTextError

__all__ = ["MULTILINE_FIELDS", "check_text", "displayable", "text_problem"]

#: Field names whose texts may span lines (the last part of a nested name counts).
MULTILINE_FIELDS = frozenset({"notes", "reason", "custom_reason", "note", "comment",
                              "staff_notes"})

_SURROGATES = re.compile("[\ud800-\udfff]")
_LINE_CHARACTERS = frozenset("\n\r\t")


def text_problem(value: str, multiline: bool = False) -> str | None:
    """What is wrong with ``value`` as a text to store, or None when it is fine."""
    if _SURROGATES.search(value):
        return ("This text holds characters that cannot be stored (a broken character "
                "encoding); type or paste it again.")
    for ch in value:
        if ch in _LINE_CHARACTERS:
            if not multiline:
                return "Line breaks and tabs are not allowed here; write it on one line."
        elif unicodedata.category(ch) == "Cc":
            name = "NUL" if ch == "\x00" else f"U+{ord(ch):04X}"
            return f"Remove the control character ({name}) from this text."
    return None


def is_multiline(field: str) -> bool:
    """Whether the field (``notes``, ``reasons[0]``, ``job.custom_reason``) may span lines."""
    last = re.split(r"[.\[\]]", field.rstrip("]"))[-1] if field else field
    return last in MULTILINE_FIELDS or field.split("[", 1)[0] in MULTILINE_FIELDS


def check_text(field: str, value: str, multiline: bool | None = None) -> str:
    """``value`` unchanged, or raises InvalidTextError naming ``field``.

    ``multiline`` defaults to whether ``field`` is one of :data:`MULTILINE_FIELDS`.
    """
    problem = text_problem(value, is_multiline(field) if multiline is None else multiline)
    if problem is not None:
        raise InvalidTextError(f"{field}: {problem}", {field: problem})
    return value


def displayable(value: str) -> str:
    """``value`` with every lone surrogate replaced by U+FFFD, so it can be encoded."""
    return _SURROGATES.sub("\ufffd", value)
