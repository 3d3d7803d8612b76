"""Payments for a date range as files (issue 13, exports).

* ``GET /api/v1/reports/payments.xlsx?from=YYYY-MM-DD&to=YYYY-MM-DD`` → 200, an Excel
  workbook (``adapters.exports.payments_xlsx``); ``.csv`` → 200, the same rows as CSV.
  Days in the lab's zone (``PRINTCORE_TIMEZONE``), both included; the file is named
  ``payments-<from>-to-<to>.xlsx`` (``Content-Disposition: attachment``). A range without
  payments gives a file with the header row only.
* 401 without a staff login (session cookie or bearer token); 422 with per-field
  messages (``from``, ``to``) for a missing or unparseable date, a year before 2000, a
  reversed range or one longer than ten years
  (:func:`printcore.requests.payments_report.parse_range`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, payments_csv, payments_xlsx
from adapters.web.context import WebContext
from adapters.web.responses import error_json
from adapters.web.security import workstation
from printcore.errors import PrintcoreError
from printcore.requests.payments_report import PaymentReport, PaymentRow, parse_range

__all__ = ["payment_export_routes"]

Writer = Callable[[Sequence[PaymentRow], str], bytes]


def payment_export_routes(ctx: WebContext) -> list[Route]:
    """The two export routes (full paths: registered beside the ``/api/v1`` mount)."""
    report = PaymentReport(ctx.requests.uow)

    def export(extension: str, media_type: str, write: Writer) -> Callable[..., object]:
        async def endpoint(request: Request) -> Response:
            try:
                workstation(request, ctx, api=True)
                params = request.query_params
                days = parse_range(params.get("from"), params.get("to"), ctx.timezone)
                body = write(report.rows(days), ctx.timezone)
            except PrintcoreError as err:
                return error_json(err)
            name = f"{days.file_stem}.{extension}"
            return Response(body, media_type=media_type, headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store"})

        endpoint.__name__ = f"payments_{extension}"
        return endpoint

    return [
        Route("/api/v1/reports/payments.xlsx", export("xlsx", XLSX_MEDIA_TYPE, payments_xlsx)),
        Route("/api/v1/reports/payments.csv", export("csv", CSV_MEDIA_TYPE, payments_csv)),
    ]
