"""The lab's figures (:mod:`printcore.requests.analytics`) as JSON and as a page.

* ``GET /api/v1/analytics?from=YYYY-MM-DD&to=YYYY-MM-DD`` (staff login, as the other API
  routes): :func:`report_json`. Both ends are local days in the lab's zone, inclusive;
  a missing end defaults to today / 30 days back. 401 without a login, 422 (fields
  ``from``/``to``, the message giving the accepted form) for an unparseable date, ``from``
  after ``to`` or a range over 366 days, 503 when the database cannot be reached.
* ``GET /staff/reports?from=&to=`` (staff session; default the last 30 days): the same
  figures as tables, with bar charts per day drawn here as inline SVG (no JavaScript),
  each with an accessible title and its numbers in the table beside it. Bad dates answer
  the page with the message (422) and the last 30 days' form values. ``group=week``
  shows the counts per ISO week instead of per day (also in the API).
* ``POST /staff/reports/email`` (staff session, CSRF, the staff password asked again:
  the file holds students' names and addresses): fields ``export_from``/``export_to``
  (``YYYY-MM-DD``), ``format`` (``xlsx``/``csv``), ``address``, ``staff_name``. Queues
  the payments export to the address as an attachment through the outbox and a lab event
  ``export_emailed`` (``PaymentReport.email``), then redirects (303) to the page with a
  note. Bad input answers the page with the message and the field marked (422; 403 for a
  bad CSRF token) and queues nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

import attrs
from email_validator import EmailNotValidError, validate_email
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adapters.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, payments_csv, payments_xlsx
from adapters.web.context import WebContext
from adapters.web.identity import acting_name, remember_if_unset
from adapters.web.render import Renderer
from adapters.web.reprompt import require_password_again
from adapters.web.responses import JSONResponse, error_json, status_for
from adapters.web.security import require_csrf, workstation
from printcore.errors import AuthenticationError, PrintcoreError, StorageError, ValidationError
from printcore.events import Actor
from printcore.requests.analytics import DayFigures, Report
from printcore.requests.payments_report import PaymentReport, parse_range

__all__ = ["analytics_routes", "bar_chart", "report_json"]

PAGE = "/staff/reports"
_COUNTS = ("submissions", "approvals", "rejections", "failed_prints", "completions",
           "pickups", "reverted_completions", "reverted_pickups")


def _counts(d: DayFigures) -> dict[str, int]:
    return {name: getattr(d, name) for name in _COUNTS}


def report_json(report: Report) -> dict[str, Any]:
    """``{from, to, timezone, days: [{date, submissions, approvals, rejections,
    failed_prints, completions, pickups, reverted_completions, reverted_pickups}], totals:
    {the same counts}, rejection_reasons: [{reason, count}], lead_times: [{stage, from, to,
    jobs, median_hours, p90_hours}], material: [{print_method, color, grams, payments,
    revenue_cents}], revenue_cents, payments, voided_payments, group: "day"|"week",
    periods: [{period, first, last, the same counts}], printers: [{printer, prints,
    hours_in_use, hours_in_range, utilisation}], queue_waits: [{wait, from, to, tickets,
    median_minutes, p90_minutes}], throughput: {days, prints, pickups, prints_per_day,
    prints_per_week, pickups_per_day, pickups_per_week}}``; dates ``YYYY-MM-DD`` (local), ``period`` a date or an
    ISO week ``2026-W41``, hours and minutes as numbers (null: no job / ticket),
    utilisation 0..1, grams, integer cents."""
    return {
        "from": report.range.first.isoformat(), "to": report.range.last.isoformat(),
        "timezone": report.range.timezone,
        "days": [{"date": d.day.isoformat(), **_counts(d)} for d in report.days],
        "totals": _counts(report.totals),
        "rejection_reasons": [{"reason": r, "count": n} for r, n in report.rejection_reasons],
        "lead_times": [{"stage": s.stage, "from": s.start, "to": s.end, "jobs": s.jobs,
                        "median_hours": s.median_hours, "p90_hours": s.p90_hours}
                       for s in report.stages],
        "material": [{"print_method": m.print_method, "color": m.color, "grams": m.grams,
                      "payments": m.payments, "revenue_cents": m.revenue_cents}
                     for m in report.material],
        "revenue_cents": report.revenue_cents, "payments": report.payments,
        "voided_payments": report.voided_payments,
        "group": report.group,
        "periods": [{"period": p.label, "first": p.first.isoformat(),
                     "last": p.last.isoformat(), **_counts(p.figures)}
                    for p in report.periods],
        "printers": [{"printer": u.printer, "prints": u.prints,
                      "hours_in_use": u.hours_in_use, "hours_in_range": u.hours_in_range,
                      "utilisation": u.utilisation} for u in report.printers],
        "queue_waits": [{"wait": w.wait, "from": w.start, "to": w.end, "tickets": w.tickets,
                         "median_minutes": w.median_minutes, "p90_minutes": w.p90_minutes}
                        for w in report.queue_waits],
        "throughput": attrs.asdict(report.throughput),
    }


def bar_chart(chart_id: str, title: str, days: list[tuple[date | str, int]],
              unit: str = "days") -> Markup:
    """An SVG bar chart (one bar per day or week: ``(date or label, count)``) with
    ``<title>``/``<desc>`` for screen readers; it scales to its box (``viewBox``), so it
    never widens the page."""
    width, height, left, bottom, top = 600, 180, 34, 22, 10
    peak = max((n for _, n in days), default=0)
    scale = max(peak, 1)
    step = (width - left) / max(len(days), 1)
    total = sum(n for _, n in days)
    parts = [
        f'<svg class="chart" id="{chart_id}" role="img" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{total} in all over {len(days)} {unit}, at most '
        f'{peak} in one {unit[:-1]}; the numbers are in the table beside the chart.</desc>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'stroke="#555" stroke-width="1"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="11" '
        f'fill="#222">{peak}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" font-size="11" '
        'fill="#222">0</text>',
    ]
    usable = height - bottom - top
    for n, (day, value) in enumerate(days):
        h = usable * value / scale
        x = left + n * step + step * 0.1
        parts.append(f'<rect x="{x:.2f}" y="{height - bottom - h:.2f}" '
                     f'width="{max(step * 0.8, 0.5):.2f}" height="{h:.2f}" fill="#1f5f99">'
                     f'<title>{_label(day)}: {value}</title></rect>')
    if days:
        parts.append(f'<text x="{left}" y="{height - 6}" font-size="11" fill="#222">'
                     f'{_label(days[0][0])}</text>')
        parts.append(f'<text x="{width - 2}" y="{height - 6}" text-anchor="end" font-size="11" '
                     f'fill="#222">{_label(days[-1][0])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _label(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


_EXPORT_FIELDS = {"from": "export_from", "to": "export_to"}
_MEDIA = {"xlsx": XLSX_MEDIA_TYPE, "csv": CSV_MEDIA_TYPE}


def _address(raw: Any) -> str:
    """The finance address from the form, checked with email-validator (syntax only).
    Raises ValidationError (field ``address``)."""
    text = str(raw or "").strip()
    try:
        if not text or any(c in text for c in "\r\n\x00"):
            raise EmailNotValidError("empty or more than one line")
        return str(validate_email(text, check_deliverability=False).normalized)
    except EmailNotValidError as err:
        raise ValidationError(f"Not an email address: {text[:60]!r} ({err}).",
                              {"address": "Enter one address, like finance@example.edu."}
                              ) from None


def analytics_routes(ctx: WebContext, render: Renderer) -> list[Route]:
    """The routes (register before the ``/api/v1`` mount): the API, the page and the
    page's "Email to finance" form (``POST /staff/reports/email``)."""

    def service() -> Any:
        if ctx.analytics is None:
            raise StorageError("Reports are not set up on this server.")
        return ctx.analytics

    async def api_analytics(request: Request) -> Response:
        try:
            workstation(request, ctx, api=True)
            q = request.query_params
            return JSONResponse(report_json(service().report(q.get("from"), q.get("to"),
                                                             q.get("group"))))
        except PrintcoreError as err:
            return error_json(err)

    def page(request: Request, first: str | None, last: str | None, group: str | None,
             email_error: PrintcoreError | None = None,
             email_values: dict[str, str] | None = None) -> Response:
        error: ValidationError | None = None
        try:
            report = service().report(first, last, group)
        except ValidationError as err:
            error, report = err, service().report()
        periods = list(report.periods)
        unit = "weeks" if report.group == "week" else "days"
        per = "per week" if report.group == "week" else "per day"
        finance = ctx.finance_email or ""
        values = email_values or {}
        email_fields = (email_error.fields if isinstance(email_error, ValidationError)
                        else {})
        context = {
            "report": report, "error": error,
            "fields": email_fields if email_error is not None
            else (error.fields if error is not None else {}),
            "range_fields": error.fields if error is not None else {},
            "form_from": first if error is not None and first is not None
            else report.range.first.isoformat(),
            "form_to": last if error is not None and last is not None
            else report.range.last.isoformat(),
            "group": report.group, "per": per,
            "hours": _hours,
            "email_error": email_error,
            "export_from": values.get("export_from", report.range.first.isoformat()),
            "export_to": values.get("export_to", report.range.last.isoformat()),
            "export_format": values.get("format", "xlsx"),
            "export_address": values.get("address", finance),
            "finance_email": finance,
            "charts": [
                (key, f"{title} {per}",
                 bar_chart(f"chart-{key}", f"{title} {per}",
                           [(p.first if report.group == "day" else p.label,
                             getattr(p.figures, key)) for p in periods], unit))
                for key, title in (("submissions", "Submissions"),
                                   ("completions", "Completions"))
            ],
        }
        status = 200
        if email_error is not None:
            status = status_for(email_error)
        elif error is not None:
            status = 422
        return render(request, "staff/reports.html", context, status_code=status)

    async def reports_page(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return RedirectResponse(f"/staff/login?next={quote(PAGE)}", status_code=303)
        q = request.query_params
        return page(request, q.get("from"), q.get("to"), q.get("group"))

    async def email_export(request: Request) -> Response:
        try:
            ws = workstation(request, ctx)
        except AuthenticationError:
            return RedirectResponse(f"/staff/login?next={quote(PAGE)}", status_code=303)
        form = await request.form()
        name = acting_name(request, form)
        values = {k: str(form.get(k) or "") for k in ("export_from", "export_to", "format",
                                                       "address")}
        try:
            require_csrf(request, str(form.get("csrf_token", "")))
            try:
                days = parse_range(values["export_from"], values["export_to"], ctx.timezone)
            except ValidationError as err:
                err.fields = {_EXPORT_FIELDS.get(k, k): v for k, v in err.fields.items()}
                raise
            address = _address(values["address"])
            file_format = values["format"] or "xlsx"
            if file_format not in _MEDIA:
                raise ValidationError(f"Unknown format {file_format[:20]!r}: choose xlsx or "
                                      "csv.", {"format": "Choose xlsx or csv."})
            require_password_again(ctx, form)
            write = payments_xlsx if file_format == "xlsx" else payments_csv
            message = PaymentReport(ctx.requests.uow, ctx.requests.clock).email(
                days, address, Actor.staff(name, ws), file_format, _MEDIA[file_format],
                lambda rows: write(rows, ctx.timezone))
        except PrintcoreError as err:
            return page(request, values["export_from"] or None, values["export_to"] or None,
                        None, email_error=err, email_values=values)
        remember_if_unset(request, name)
        request.session["flash"] = (
            f"The payments from {days.first} to {days.last} "
            f"({message.payload['payments']} rows, {file_format}) are queued to {address}; "
            "the outbox sends them.")
        back = urlencode({"from": days.first.isoformat(), "to": days.last.isoformat()})
        return RedirectResponse(f"{PAGE}?{back}", status_code=303)

    return [Route("/api/v1/analytics", api_analytics, methods=["GET"]),
            Route(PAGE, reports_page, methods=["GET"]),
            Route(f"{PAGE}/email", email_export, methods=["POST"])]
