"""One cattrs converter for every edge: API bodies, ``metadata.json``, stored JSON.

Datetimes become ISO 8601 strings with their UTC offset; ``Decimal`` becomes a string.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import cattrs

__all__ = ["converter", "to_json_dict"]


def _dt_to_str(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: printcore keeps every time in UTC")
    return value.astimezone(UTC).isoformat()


def _str_to_dt(value: Any, _type: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


converter = cattrs.Converter()
converter.register_unstructure_hook(datetime, _dt_to_str)
converter.register_structure_hook(datetime, _str_to_dt)
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, lambda v, _t: Decimal(str(v)))


def to_json_dict(obj: Any) -> Any:
    """Unstructure an attrs object (or list/dict of them) into JSON-compatible values."""
    return converter.unstructure(obj)
