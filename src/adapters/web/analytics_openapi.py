"""The OpenAPI description of ``GET /analytics`` (:mod:`adapters.web.analytics_api`),
merged into :func:`adapters.web.openapi.openapi_document`."""

from __future__ import annotations

from typing import Any

__all__ = ["analytics_paths"]

_COUNT = {"type": "integer", "minimum": 0}
_COUNTS = {name: _COUNT for name in (
    "submissions", "approvals", "rejections", "failed_prints", "completions", "pickups",
    "reverted_completions", "reverted_pickups")}
_HOURS = {"type": ["number", "null"], "minimum": 0}
_DAY = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def analytics_paths(errors: Any, security: list[dict[str, list[str]]]) -> dict[str, Any]:
    """``errors(*codes)`` gives the error answers (the document's own helper)."""
    schema = _object({
        "from": _DAY, "to": _DAY, "timezone": {"type": "string"},
        "days": {"type": "array", "items": _object({"date": _DAY, **_COUNTS})},
        "totals": _object(dict(_COUNTS)),
        "rejection_reasons": {"type": "array", "items": _object({
            "reason": {"type": "string"}, "count": {"type": "integer", "minimum": 1}})},
        "lead_times": {"type": "array", "items": _object({
            "stage": {"type": "string", "enum": ["review", "confirmation", "wait_to_print",
                                                 "printing", "pickup"]},
            "from": {"type": "string"}, "to": {"type": "string"}, "jobs": _COUNT,
            "median_hours": _HOURS, "p90_hours": _HOURS})},
        "material": {"type": "array", "items": _object({
            "print_method": {"type": "string"}, "color": {"type": "string"},
            "grams": {"type": "number", "minimum": 0}, "payments": _COUNT,
            "revenue_cents": {"type": "integer"}})},
        "revenue_cents": {"type": "integer"}, "payments": _COUNT,
        "voided_payments": _COUNT,
        "throughput": _object({
            "days": _COUNT, "prints": {"type": "integer"}, "pickups": {"type": "integer"},
            **{k: {"type": "number"} for k in ("prints_per_day", "prints_per_week",
                                               "pickups_per_day", "pickups_per_week")}}),
        "group": {"type": "string", "enum": ["day", "week"]},
        "periods": {"type": "array", "description": "The counts per local day, or per "
                    "ISO week (Monday to Sunday; the first and last week clipped to the "
                    "range), as `group` says", "items": _object({
                        "period": {"type": "string", "description": "YYYY-MM-DD or "
                                   "YYYY-Www (ISO week, e.g. 2026-W41)"},
                        "first": _DAY, "last": _DAY, **_COUNTS})},
        "printers": {"type": "array", "description": "Self-service printers: hours a "
                     "print was running (started to closed, clipped to the range; an open "
                     "print counts until now) over the range's hours", "items": _object({
                         "printer": {"type": "string"}, "prints": _COUNT,
                         "hours_in_use": {"type": "number", "minimum": 0},
                         "hours_in_range": {"type": "number", "minimum": 0},
                         "utilisation": {"type": "number", "minimum": 0, "maximum": 1}})},
        "queue_waits": {"type": "array", "description": "Minutes from joining the queue "
                        "to the first offer / to the start, over the tickets offered / "
                        "started in the range", "items": _object({
                            "wait": {"type": "string", "enum": ["offered", "started"]},
                            "from": {"type": "string"}, "to": {"type": "string"},
                            "tickets": _COUNT, "median_minutes": _HOURS,
                            "p90_minutes": _HOURS})},
    })
    params = [{"name": name, "in": "query", "required": False, "schema": {"type": "string"},
               "description": f"{what} day, YYYY-MM-DD in the lab's zone, included "
                              f"(default: {default})"}
              for name, what, default in (("from", "First", "30 days before `to`"),
                                          ("to", "Last", "today"))]
    params.append({"name": "group", "in": "query", "required": False,
                   "schema": {"type": "string", "enum": ["day", "week"], "default": "day"},
                   "description": "`periods` per local day (default) or per ISO week"})
    return {"/analytics": {"get": {
        "summary": "The lab's figures for a date range (the reports page as JSON)",
        "description": "Per local day: submissions, approvals, rejections, failed prints, "
                       "completions, pickups and reverts; rejections by reason; lead time "
                       "per stage (median and p90 in hours, over jobs whose stage ended in "
                       "the range); material in grams and revenue in integer cents by "
                       "print method and colour, from payments that are not voided. 422 "
                       "(fields `from`/`to`) for a date not YYYY-MM-DD, a year outside "
                       "1970–9998, `from` after `to`, or more than 366 days; "
                       "(field `group`) for a grouping other than day or week. Also: "
                       "printer utilisation and queue waits of the self-service queue.",
        "security": security,
        "parameters": params,
        "responses": {"200": {"description": "the figures",
                              "content": {"application/json": {"schema": schema}}},
                      **errors(401, 422, 503)}}}}
