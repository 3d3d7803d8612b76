"""Server-rendered pages with Jinja2: the template environment and its filters.

Times are shown in the lab's zone (``PRINTCORE_TIMEZONE``), money as dollars from cents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from adapters.web.security import csrf_token
from printcore.requests.details import EDITABLE_FIELDS
from printcore.requests.job import JobStatus
from printcore.requests.pricing import format_cents
from printcore.text import displayable

__all__ = ["Renderer"]

TEMPLATES = Path(__file__).with_name("templates")


EVENT_TITLES: dict[str, str] = {
    "submit": "Submitted",
    "add_sliced_file": "Sliced file added",
    "approve": "Approved",
    "reject": "Rejected",
    "confirm": "Confirmed by the student",
    "force_confirm": "Confirmed by staff",
    "start_print": "Printing started",
    "fail_print": "Print failed",
    "complete": "Completed",
    "pick_up": "Paid and picked up",
    "revert_completion": "Completion undone",
    "revert_pickup": "Pickup undone",
    "delete": "Deleted",
    "resend_confirmation": "Confirmation link resent",
    "confirmation_reminder": "Reminder emailed: the confirmation link expires soon",
    "message_retried": "Email sent again",
    "message_failed": "Email could not be delivered",
    "opened_in_slicer": "Opened in the slicer",
    "review": "Marked reviewed",
    "unreview": "Review undone",
    "notes": "Staff notes changed",
    "edit": "Details corrected",
    "requote": "Quote corrected (a new confirmation link was emailed)",
    "audit_repaired": "Storage repaired by the audit",
    "archived": "Archived (retention)",
    "pruned": "Pruned (retention)",
}

_DETAIL_LABELS: dict[str, str] = {
    "action": "repair",
    "host": "computer",
    "slicer": "slicer",
    "original_name": "file",
    "stored_name": "stored as",
    "source": "from",
    "saved_as": "slicer's file",
    "estimate_seconds": "slicer time (s)",
    "estimate_grams": "slicer weight (g)",
    "weight_g": "weight (g)",
    "time_hours_entered": "time entered (h)",
    "authoritative_file": "file to print",
    "reasons": "reasons",
    "reason": "reason",
    "printer": "printer",
    "grams": "grams",
    "txn_no": "transaction",
    "picked_up_by": "picked up by",
    "was_reviewed_by": "had been reviewed by",
    "error": "the server said",
}


def _was(value: Any, limit: int = 160) -> str:
    """An old or new value in a history line: quoted, on one line, shortened."""
    text = " ".join(str(value).split()) if value not in (None, "") else ""
    if not text:
        return "(empty)"
    return f"“{text[:limit]}…”" if len(text) > limit else f"“{text}”"


def _quote(figures: dict[str, Any]) -> str:
    """A requote's old or new quote: ``10.5 g, 1.5 h, $3.00``."""
    cost = figures.get("cost_cents")
    money = format_cents(int(cost)) if isinstance(cost, int) else "?"
    return f"{figures.get('weight_g')} g, {figures.get('time_hours')} h, {money}"


def event_details(details: dict[str, Any]) -> str:
    """The parts of an event's details staff care about, labelled (hashes and sizes left out).

    A correction (``{"changes": {field: {"old", "new"}}}``) reads ``email: “a” → “b”``; a
    staff-notes change (``{"old", "new"}``) reads ``notes: “old” → “new”``.
    """
    parts = []
    changes = details.get("changes")
    if isinstance(changes, dict):
        for field, change in changes.items():
            if isinstance(change, dict):
                label = EDITABLE_FIELDS.get(str(field), str(field).replace("_", " "))
                parts.append(f"{label}: {_was(change.get('old'))} → {_was(change.get('new'))}")
    if isinstance(details.get("old"), dict) and isinstance(details.get("new"), dict):
        parts.append(f"quote: {_quote(details['old'])} → {_quote(details['new'])}")
        if details.get("cost_source") == "staff":
            parts.append("cost set by hand")
    elif "old" in details and "new" in details and not isinstance(changes, dict):
        parts.append(f"notes: {_was(details['old'])} → {_was(details['new'])}")
    for key, label in _DETAIL_LABELS.items():
        value = details.get(key)
        if value in (None, "", []):
            continue
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        parts.append(f"{label}: {value}")
    return " · ".join(parts)


def filesize(size: int) -> str:
    """Bytes as ``5.9 KB`` / ``3.3 MB`` (decimal units)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _age(moment: datetime | None, now: datetime | None = None) -> str:
    """``3d 4h``, ``2h 5m``, ``7m`` since ``moment``."""
    if moment is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else "<1m"


def _displayable(value: Any) -> Any:
    """Every ``{{ … }}`` output: a stored text that cannot be encoded (a lone surrogate from
    before printcore refused them) is shown with U+FFFD instead of failing the page."""
    if isinstance(value, Markup):
        return Markup(displayable(value))
    if isinstance(value, str):
        return displayable(value)
    return value


class Renderer:
    def __init__(self, timezone: str, lab_name: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        env = self.templates.env
        env.finalize = _displayable
        env.filters["local"] = self.local
        env.filters["money"] = lambda c: "—" if c is None else format_cents(int(c))
        env.filters["age"] = _age
        env.filters["status_label"] = lambda s: JobStatus(s).label
        env.filters["event_title"] = lambda k: EVENT_TITLES.get(k, k.replace("_", " "))
        env.filters["event_details"] = event_details
        env.filters["filesize"] = filesize
        env.globals["lab_name"] = lab_name
        env.globals["timezone"] = timezone

    def local(self, moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if moment is None:
            return ""
        return moment.astimezone(self.zone).strftime(fmt + " %Z")

    def __call__(
        self, request: Request, name: str, context: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Response:
        ctx = dict(context or {})
        ctx.setdefault("csrf", csrf_token(request))
        ctx.setdefault("workstation", request.session.get("ws"))
        ctx.setdefault("flash", request.session.pop("flash", None))
        return self.templates.TemplateResponse(request, name, ctx, status_code=status_code)
