"""Retention on the web: preview, archive and prune old finished jobs from the admin area
(issue 13; the rules are :mod:`printcore.requests.retention`'s, see docs/retention.md).

* ``GET /staff/admin/retention?older_than_days=N&mode=archive|prune`` (staff session):
  the form, the preview for N days (default 365) — counts and folder bytes per state and
  a table of the jobs — the archives already in the archive folder with their sizes, and
  the last retention runs. A bad N answers 422 with the field's message.
* ``POST /staff/admin/retention/apply`` (fields ``older_than_days``, ``mode``,
  ``staff_name``, ``confirm_password``, ``csrf_token``): the shared password is asked
  again; then the run is planned afresh and applied, and the answer is a redirect to the
  page with what was done. Refusals re-show the page with the message and nothing
  removed: 422 (bad age, wrong or missing password, no staff name), 403 (CSRF), 409
  (another run in progress in this process), 503 (the archive cannot be written, or the
  database cannot be reached).
* ``GET /staff/admin/retention/archives/{name}``: download one archive (404 for any name
  that is not one of the listed archives).

The archive folder is fixed on the web: ``$PRINTCORE_HOME/archives`` (created at the
first archive run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import cast
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.retention import StorageFolders, ZipArchiver, list_archives
from adapters.sql.retention import SqlRetentionStore
from adapters.sql.uow import SqlUnitOfWork
from adapters.web.admin import SECTIONS
from adapters.web.context import WebContext
from adapters.web.identity import acting_name, remember_if_unset
from adapters.web.render import Renderer, filesize
from adapters.web.reprompt import require_password_again
from adapters.web.responses import status_for
from adapters.web.security import require_csrf, workstation
from printcore.errors import (
    AuthenticationError,
    ConcurrentChangeError,
    NotFoundError,
    PrintcoreError,
    StorageError,
    ValidationError,
)
from printcore.events import Actor
from printcore.requests.retention import Retention, RetentionMode, RetentionPlan, parse_days

__all__ = ["archive_dir_of", "retention_routes"]

PAGE = "/staff/admin/retention"
DEFAULT_DAYS = 365


def archive_dir_of(ctx: WebContext) -> Path:
    """``WebContext.archive_dir`` (``$PRINTCORE_HOME/archives``, set by the wiring); when
    a test's context sets none, beside the storage root."""
    if ctx.archive_dir is not None:
        return ctx.archive_dir
    return (ctx.storage_root or ctx.files.root).parent / "archives"


def _service(ctx: WebContext, archive_dir: Path) -> Retention:
    """Retention over the web's own units of work (SQL only). Raises StorageError."""
    factory = ctx.requests.uow
    if not isinstance(factory(), SqlUnitOfWork):
        raise StorageError("Retention needs the SQL database; it is not set up here.")
    sql = cast(Callable[[], SqlUnitOfWork], factory)
    return Retention(SqlRetentionStore(sql), StorageFolders(ctx.files), ctx.requests.clock,
                     ZipArchiver(archive_dir, ctx.files, ctx.requests.clock.now),
                     active_staff=lambda: {m.name for m in ctx.staff.list()})


def _mode(raw: object) -> RetentionMode:
    try:
        return RetentionMode(str(raw or "archive"))
    except ValueError:
        raise ValidationError("Choose archive or prune.",
                              {"mode": "Archive (a zip first) or prune (no zip)."}) from None


def retention_routes(ctx: WebContext, render: Renderer) -> list[BaseRoute]:
    """The page, the apply form's target and the archive downloads. One run at a time
    per process; previews and runs work off the event loop (they read whole folders)."""
    running = threading.Lock()

    async def page(request: Request, days_raw: str | None, mode_raw: str | None,
                   error: PrintcoreError | None = None, status: int = 200) -> Response:
        archive_dir = archive_dir_of(ctx)
        fields: dict[str, str] = dict(getattr(error, "fields", None) or {})
        plan: RetentionPlan | None = None
        days_shown = days_raw if days_raw is not None else str(DEFAULT_DAYS)
        try:
            mode = _mode(mode_raw)
        except ValidationError as err:
            error, status, mode = err, 422, RetentionMode.ARCHIVE
            fields.update(err.fields)
        try:
            plan = await run_in_threadpool(_service(ctx, archive_dir).preview, days_shown)
        except ValidationError as err:
            if error is None:
                error, status = err, 422
            fields.update(err.fields)
        except StorageError as err:
            error, status = err, 503
        runs = [e for e in ctx.staff.lab_history(200) if e.kind == "retention_applied"][:10]
        return render(request, "staff/admin_retention.html", {
            "plan": plan, "error": error, "fields": fields, "days": days_shown,
            "mode": mode.value, "archives": list_archives(archive_dir),
            "archive_dir": archive_dir, "runs": runs, "filesize": filesize,
            "section": "retention", "sections": SECTIONS,
        }, status_code=status)

    def login_redirect(request: Request) -> Response:
        target = PAGE + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/staff/login?next={quote(target)}", status_code=303)

    async def show(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        q = request.query_params
        return await page(request, q.get("older_than_days"), q.get("mode"))

    async def apply(request: Request) -> Response:
        form = await request.form()
        try:
            ws = workstation(request, ctx)
        except AuthenticationError:
            return RedirectResponse(f"/staff/login?next={quote(PAGE)}", status_code=303)
        days_raw = str(form.get("older_than_days", ""))
        mode_raw = str(form.get("mode", ""))
        name = acting_name(request, form)
        try:
            require_csrf(request, str(form.get("csrf_token", "")))
            days, mode = parse_days(days_raw), _mode(mode_raw)
            require_password_again(ctx, form)
            archive_dir = archive_dir_of(ctx)
            if mode is RetentionMode.ARCHIVE:
                try:
                    archive_dir.mkdir(parents=True, exist_ok=True)
                except OSError as err:
                    raise StorageError(f"Cannot create the archive folder {archive_dir}: "
                                       f"{err.strerror or err}. Nothing was removed.") from err
            if not running.acquire(blocking=False):
                raise ConcurrentChangeError(None, "Another retention run is in progress; wait "
                                               "for it to finish, then preview again.")
            try:
                result = await run_in_threadpool(
                    _service(ctx, archive_dir).apply, days, mode, Actor.staff(name, ws))
            finally:
                running.release()
        except PrintcoreError as err:
            return await page(request, days_raw, mode_raw, err, status_for(err))
        remember_if_unset(request, name)
        verb = "Archived" if mode is RetentionMode.ARCHIVE else "Pruned"
        note = (f"{verb} {len(result.removed)} job(s), {filesize(result.bytes_removed)} of "
                "storage freed")
        if result.archive is not None:
            note += f", into {result.archive.name} (verified)"
        if result.folders_left:
            note += ("; the folders of #" + ", #".join(map(str, result.folders_left))
                     + " could not be deleted (the storage check lists them)")
        if result.skipped:
            note += (f"; skipped {len(result.skipped)} changed meanwhile (#"
                     + ", #".join(map(str, result.skipped)) + ")")
        request.session["flash"] = note + "."
        return RedirectResponse(
            f"{PAGE}?{urlencode({'older_than_days': days, 'mode': mode.value})}",
            status_code=303)

    async def download(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        name = request.path_params["name"]
        archive_dir = archive_dir_of(ctx)
        if name not in {a.name for a in list_archives(archive_dir)}:
            return render(request, "error.html", {"error": NotFoundError(
                f"There is no archive called {name!r}; choose one from the list.")},
                status_code=404)
        return FileResponse(archive_dir / name, media_type="application/zip", filename=name)

    return [Route(PAGE, show, methods=["GET"]),
            Route(PAGE + "/apply", apply, methods=["POST"]),
            Route(PAGE + "/archives/{name}", download, methods=["GET"])]
