"""One cattrs converter for every edge: JSON columns, ``metadata.json``, API bodies.

Datetimes become ISO 8601 strings in UTC (``"2026-09-01T15:00:00+00:00"``); ``JobFile``,
``SliceEstimate``, ``Payment`` and ``Actor`` become plain dicts keyed by their field names;
``Decimal`` becomes a string. Structuring raises cattrs errors (``ClassValidationError``
and friends) for malformed data, and ValueError (wrapped by cattrs) for a naive datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from printcore.requests.job import Actor, JobFile, Payment
from printcore.slicing import SliceEstimate

__all__ = ["converter", "parse_utc", "to_json_dict", "utc_iso"]


def utc_iso(value: datetime) -> str:
    """``value`` as an ISO 8601 string in UTC. Raises ValueError for a naive datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"Refusing naive datetime {value.isoformat()}: use UTC-aware times.")
    return value.astimezone(UTC).isoformat()


def parse_utc(value: Any, _type: Any = datetime) -> datetime:
    """An ISO 8601 string (``Z`` or an offset required) or aware datetime → aware UTC.

    Raises ValueError for a naive or malformed value, TypeError for another type.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value)
    else:
        raise TypeError(f"Expected an ISO 8601 datetime string, not {type(value).__name__}.")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"Datetime {value!r} has no time zone; send UTC (e.g. ending in Z).")
    return parsed.astimezone(UTC)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_unstructure_hook(datetime, utc_iso)
    conv.register_structure_hook(datetime, parse_utc)
    # Explicit hooks for the value objects kept inside JSON columns: every field is
    # written (stable shape), unknown keys are ignored on the way back (forward compatible).
    for cls in (SliceEstimate, JobFile, Payment, Actor):
        conv.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, conv))
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv))
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, lambda v, _t: Decimal(str(v)))
    return conv


#: The shared converter (datetimes ⇄ UTC ISO strings; attrs classes ⇄ dicts).
converter: cattrs.Converter = _make_converter()



def to_json_dict(obj: Any) -> Any:
    """Unstructure an attrs object (or list/dict of them) into JSON-compatible values."""
    return converter.unstructure(obj)
