"""Whole numbers from URLs and forms, kept inside what the database can hold.

* Path ids use the ``id`` convertor: whole numbers up to :data:`MAX_ID` (2^31 − 1, the
  largest value of the id columns, 32-bit ``INTEGER`` on PostgreSQL), so a larger id
  matches no route and answers 404 instead of overflowing the database's integers.
* Paging values (``limit``, ``offset``, ``page``) outside their range answer 422.
* A form's ``version`` (the optimistic-lock counter a page was drawn with) is a whole
  number below 2^63 or absent.
"""

from __future__ import annotations

from typing import Any

from starlette.convertors import Convertor, register_url_convertor

from printcore.errors import ValidationError

__all__ = ["MAX_ID", "MAX_OFFSET", "MAX_PAGE", "IdConvertor", "json_version",
           "optional_version", "upto_regex", "whole_number"]

MAX_ID = 2**31 - 1
MAX_OFFSET = 1_000_000_000
MAX_PAGE = 1_000_000
_INT64 = 2**63


def upto_regex(limit: int) -> str:
    """A regular expression matching the decimal numbers 0..``limit`` (no sign; leading
    zeros allowed only below ``limit``'s length)."""
    digits = str(limit)
    parts = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for i, ch in enumerate(digits):
        rest = len(digits) - i - 1
        if ch != "0":
            low = "0" if i else "1"
            top = int(ch) - 1
            if top >= int(low):
                tail = f"[0-9]{{{rest}}}" if rest else ""
                parts.append(f"{digits[:i]}[{low}-{top}]{tail}")
    parts.append(digits)
    return "(?:" + "|".join(parts) + ")"


class IdConvertor(Convertor[int]):
    regex = upto_regex(MAX_ID)

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(int(value))


register_url_convertor("id", IdConvertor())


def whole_number(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """``raw`` as an int in ``low..high``; ``default`` when empty. Raises ValidationError
    naming ``name`` (for 422)."""
    text = (raw or "").strip()
    if not text:
        return default
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 20:
        raise ValidationError(f"{name} must be a whole number from {low} to {high}.",
                              {name: f"A whole number from {low} to {high}."})
    value = int(text)
    if not low <= value <= high:
        raise ValidationError(f"{name} must be from {low} to {high}.",
                              {name: f"A whole number from {low} to {high}."})
    return value


def optional_version(raw: str | None) -> int | None:
    """A form's ``version`` field: None when absent. Raises ValidationError when it is not
    a whole number from 0 to 2^63 − 1."""
    text = (raw or "").strip()
    if not text:
        return None
    return whole_number(text, "version", 0, 0, _INT64 - 1)


def json_version(body: dict[str, Any]) -> int | None:
    """A JSON body's ``version`` (the optimistic-lock counter the client saw): None when
    absent. Raises ValidationError when it is not a whole number (``true`` is not one;
    the input guard has already refused integers beyond 64 bits)."""
    value = body.get("version")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("version must be a whole number.", {"version": "Whole number."})
    return value
