"""The lab's figures (:mod:`printcore.requests.analytics`) as JSON and as a page.

* ``GET /api/v1/analytics?from=YYYY-MM-DD&to=YYYY-MM-DD`` (staff login, as the other API
  routes): :func:`report_json`. Both ends are local days in the lab's zone, inclusive;
  a missing end defaults to today / 30 days back. 401 without a login, 422 (fields
  ``from``/``to``, the message giving the accepted form) for an unparseable date, ``from``
  after ``to`` or a range over 366 days, 503 when the database cannot be reached.
* ``GET /staff/reports?from=&to=`` (staff session; default the last 30 days): the same
  figures as tables, with bar charts per day drawn here as inline SVG (no JavaScript),
  each with an accessible title and its numbers in the table beside it. Bad dates answer
  the page with the message (422) and the last 30 days' form values.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adapters.web.context import WebContext
from adapters.web.render import Renderer
from adapters.web.responses import JSONResponse, error_json
from adapters.web.security import workstation
from printcore.errors import AuthenticationError, PrintcoreError, StorageError, ValidationError
from printcore.requests.analytics import DayFigures, Report

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
    revenue_cents}], revenue_cents, payments, voided_payments}``; dates ``YYYY-MM-DD``
    (local), hours as numbers (null: no job), grams, integer cents."""
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
    }


def bar_chart(chart_id: str, title: str, days: list[tuple[date, int]]) -> Markup:
    """An SVG bar chart (one bar per day) with ``<title>``/``<desc>`` for screen readers;
    it scales to its box (``viewBox``), so it never widens the page."""
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
        f'<desc id="{chart_id}-desc">{total} in all over {len(days)} days, at most '
        f'{peak} on one day; the numbers are in the table beside the chart.</desc>',
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
                     f'<title>{day.isoformat()}: {value}</title></rect>')
    if days:
        parts.append(f'<text x="{left}" y="{height - 6}" font-size="11" fill="#222">'
                     f'{days[0][0].isoformat()}</text>')
        parts.append(f'<text x="{width - 2}" y="{height - 6}" text-anchor="end" font-size="11" '
                     f'fill="#222">{days[-1][0].isoformat()}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def analytics_routes(ctx: WebContext, render: Renderer) -> list[Route]:
    """The two routes (register before the ``/api/v1`` mount)."""

    def service() -> Any:
        if ctx.analytics is None:
            raise StorageError("Reports are not set up on this server.")
        return ctx.analytics

    async def api_analytics(request: Request) -> Response:
        try:
            workstation(request, ctx, api=True)
            q = request.query_params
            return JSONResponse(report_json(service().report(q.get("from"), q.get("to"))))
        except PrintcoreError as err:
            return error_json(err)

    async def reports_page(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return RedirectResponse(f"/staff/login?next={quote(PAGE)}", status_code=303)
        q = request.query_params
        first, last = q.get("from"), q.get("to")
        error: ValidationError | None = None
        try:
            report = service().report(first, last)
        except ValidationError as err:
            error, report = err, service().report()
        days = list(report.days)
        context = {
            "report": report, "error": error,
            "fields": error.fields if error is not None else {},
            "form_from": first if error is not None and first is not None
            else report.range.first.isoformat(),
            "form_to": last if error is not None and last is not None
            else report.range.last.isoformat(),
            "hours": _hours,
            "charts": [
                ("submissions", "Submissions per day",
                 bar_chart("chart-submissions", "Submissions per day",
                           [(d.day, d.submissions) for d in days])),
                ("completions", "Completions per day",
                 bar_chart("chart-completions", "Completions per day",
                           [(d.day, d.completions) for d in days])),
            ],
        }
        return render(request, "staff/reports.html", context,
                      status_code=422 if error is not None else 200)

    return [Route("/api/v1/analytics", api_analytics, methods=["GET"]),
            Route(PAGE, reports_page, methods=["GET"])]
