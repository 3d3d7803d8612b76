"""``printcore export payments``: the payments of a date range as a file.

    printcore export payments --from 2026-11-01 --to 2026-11-30 --format xlsx --output PATH

Days in the lab's zone (``PRINTCORE_TIMEZONE``), both included; the same rows as
``GET /api/v1/reports/payments.xlsx`` (``adapters.exports``). ``--output -`` writes to
standard output. Exit codes: 0 written (says how many payments), 1 refused input (a bad
date or range, or an output path that cannot be written; nothing is written), 2
configuration or database unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: main() loads the settings
    from entrypoints.settings import Settings

__all__ = ["add_parsers", "cmd_export_payments"]


def add_parsers(sub: Any) -> None:
    export = sub.add_parser("export", help="export records as files")
    export_sub = export.add_subparsers(dest="export_command", required=True)
    pay = export_sub.add_parser("payments", help="payments of a date range (xlsx or csv)")
    pay.add_argument("--from", dest="date_from", required=True, metavar="YYYY-MM-DD",
                     help="first day, in the lab's zone")
    pay.add_argument("--to", dest="date_to", required=True, metavar="YYYY-MM-DD",
                     help="last day (included)")
    pay.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    pay.add_argument("--output", required=True, metavar="PATH",
                     help="file to write (replaced if it exists), or - for standard output")
    pay.set_defaults(func=cmd_export_payments)


def cmd_export_payments(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.exports import payments_csv, payments_xlsx
    from entrypoints.bootstrap import bootstrap
    from printcore.errors import ValidationError
    from printcore.requests.payments_report import PaymentReport, parse_range

    try:
        days = parse_range(args.date_from, args.date_to, settings.timezone)
    except ValidationError as err:
        print(f"printcore: {err.message} Nothing was written; give --from and --to as "
              "YYYY-MM-DD, --to on or after --from.", file=sys.stderr)
        return 1
    output = None if args.output == "-" else Path(args.output)
    if output is not None and not output.parent.is_dir():
        print(f"printcore: the folder {output.parent} does not exist; create it or choose "
              "another --output. Nothing was written.", file=sys.stderr)
        return 1
    container = bootstrap(settings)
    try:
        rows = PaymentReport(container.requests.uow).rows(days)
    finally:
        container.close()
    write = payments_xlsx if args.format == "xlsx" else payments_csv
    body = write(rows, settings.timezone)
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return 0
    try:  # written beside the target, then renamed: a failure leaves no half file
        fd, tmp = tempfile.mkstemp(prefix=".export-", dir=output.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.replace(tmp, output)
    except OSError as err:
        print(f"printcore: cannot write {output}: {err.strerror or err}. Choose another "
              "--output. Nothing was written.", file=sys.stderr)
        return 1
    print(f"{len(rows)} payment(s) from {days.first} to {days.last} ({settings.timezone}) "
          f"written to {output}")
    return 0
