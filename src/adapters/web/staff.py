"""Staff pages: login per workstation, the dashboard, a job's page and its action forms;
the printers-and-queue page comes from :mod:`adapters.web.printers`."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from adapters.web.context import WebContext
from adapters.web.details_api import details_context, form_changes
from adapters.web.identity import acting_name, identity_routes, remember_if_unset
from adapters.web.intake import receive_sliced_file
from adapters.web.locks_api import QUIET_EVENTS, lock_context
from adapters.web.numbers import MAX_PAGE, optional_version, whole_number
from adapters.web.pricing_api import pickup_preview
from adapters.web.printers import printer_routes
from adapters.web.render import Renderer
from adapters.web.reprompt import REPROMPT_FIELD, require_password_again
from adapters.web.responses import status_for
from adapters.web.security import (
    CsrfError,
    clean_workstation,
    client_address,
    login_session,
    logout_session,
    require_csrf,
    workstation,
)
from adapters.web.setup_notices import setup_routes
from adapters.web.sliced_saves import adopt_save, adopted_note, approval_candidates
from adapters.web.slicer_links import slicer_link_context
from adapters.web.thumbnails import thumbnail_context
from printcore.errors import (
    AuthenticationError,
    NotFoundError,
    PrintcoreError,
    RateLimitedError,
    ValidationError,
)
from printcore.requests.job import ACTIVE_STATUSES, Actor, PrintMethod
from printcore.requests.lifecycle import MAX_QUOTE_CENTS, allowed_events, allowed_overrides
from printcore.requests.pricing import format_cents, per_gram, round_up_to_half_hour
from printcore.requests.saves import SAVE_CHOICE_PREFIX, prefill_agrees
from printcore.requests.search import JobQuery
from printcore.requests.service import REJECTION_REASONS

__all__ = ["staff_routes"]

PAGE_SIZE = 50

DONE_MESSAGES: dict[str, str] = {
    "approve": "Approved: the student was emailed the cost and a confirmation link.",
    "reject": "Rejected: the student was emailed the reasons.",
    "force_confirm": "Confirmed for the student: ready to print.",
    "start_print": "Marked as printing.",
    "fail_print": "Print failure recorded: the job is back in Ready to print.",
    "complete": "Completed: the student was emailed to pick it up.",
    "pick_up": "Payment recorded: picked up.",
    "revert_completion": "Completion undone: back to Printing.",
    "revert_pickup": "Pickup undone: the payment was voided.",
    "resend_confirmation": "A new confirmation link was emailed; the earlier link no longer "
                           "works.",
    "review": "Marked reviewed: the job no longer shows as NEW.",
    "unreview": "Review undone: the job shows as NEW again.",
    "notes": "Staff notes saved.",
    "edit": "Request details corrected.",
    "requote": "Quote corrected: the student was emailed the new quote and a new "
               "confirmation link; the earlier link no longer works.",
}


def _cents(form: FormData, name: str) -> int | None:
    """A dollar amount typed by staff (``4.50``, ``$4.5``) as cents; blank: None.
    Raises ValidationError on ``name``."""
    raw = str(form.get(name, "")).strip().removeprefix("$").strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise ValidationError("The cost must be an amount in dollars and cents.",
                              {name: "Enter dollars and cents, e.g. 4.50, or leave it "
                                     "empty to use the price list."})
    if value * 100 > MAX_QUOTE_CENTS:
        raise ValidationError("The cost is too high.", {
            name: f"At most {format_cents(MAX_QUOTE_CENTS)}; leave it empty to use the "
                  "price list."})
    return int(value * 100)


def _float(form: FormData, name: str) -> float | None:
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"{name} must be a number.", {name: "Enter a number."}) from None
    return value if math.isfinite(value) else None


def _version(form: FormData) -> int | None:
    return optional_version(str(form.get("version", "")))


def staff_routes(ctx: WebContext, render: Renderer) -> list[Route]:
    svc = ctx.requests

    def login_redirect(request: Request) -> Response:
        return RedirectResponse(f"/staff/login?next={request.url.path}", status_code=303)

    async def login_page(request: Request) -> Response:
        return render(request, "staff/login.html", {"error": None,
                                                    "has_password": ctx.staff.has_password()})

    async def login(request: Request) -> Response:
        form = await request.form()
        name = clean_workstation(str(form.get("workstation", "")))
        client = client_address(request)
        try:
            require_csrf(request, str(form.get("csrf_token", "")))
            if ctx.throttle is not None:
                ctx.throttle.check_login(client, name)
            try:
                ctx.staff.check_password(str(form.get("password", "")))
            except AuthenticationError:
                if ctx.throttle is not None:
                    ctx.throttle.login_failed(client, name)
                raise
        except (AuthenticationError, CsrfError, RateLimitedError) as err:
            response = render(request, "staff/login.html",
                              {"error": err, "has_password": ctx.staff.has_password(),
                               "ws_value": form.get("workstation", "")},
                              status_code=status_for(err))
            if isinstance(err, RateLimitedError):
                response.headers["Retry-After"] = str(err.retry_after)
            return response
        login_session(request, ctx, name)
        target = str(request.query_params.get("next", "/staff"))
        if not target.startswith("/staff"):
            target = "/staff"
        return RedirectResponse(target, status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        try:
            require_csrf(request, str(form.get("csrf_token", "")))
        except CsrfError:
            pass  # logging out is harmless; still do it
        logout_session(request, ctx)
        return RedirectResponse("/staff/login", status_code=303)

    async def dashboard(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        params = request.query_params
        # A search (q or a filter) lists its matches across all states, with their
        # states; without one, the tab of ``status`` as before. ``sort`` orders both.
        search = {name: str(params.get(name) or "").strip()
                  for name in ("q", "print_method", "color", "preferred_printer",
                               "discipline")}
        sort = str(params.get("sort") or "age")
        searching = any(search.values())
        status = params.get("status") or "uploaded"
        total = 0
        try:
            page = whole_number(params.get("page"), "page", 1, 1, MAX_PAGE)
            offset = (page - 1) * PAGE_SIZE
            if searching or sort != "age":
                query = JobQuery(sort=sort, limit=PAGE_SIZE, offset=offset,  # type: ignore[arg-type]
                                 status=None if searching else status, **search)
                jobs, total = svc.search_jobs(query)
            else:
                jobs = svc.list_jobs(status=status, limit=PAGE_SIZE, offset=offset)
        except ValidationError as err:
            return render(request, "error.html", {"error": err}, status_code=422)
        counts = svc.tab_counts()  # {status: (jobs, not reviewed)}
        if not searching and sort == "age":
            total = counts.get(status, (0, 0))[0]
        failed_mail = ctx.outbox.failed_jobs() if ctx.outbox is not None else {}
        here = {k: v for k, v in {**search, "sort": "" if sort == "age" else sort}.items() if v}
        if not searching:
            here["status"] = status
        return render(request, "staff/dashboard.html", {
            "tabs": [(s.value, s.label, *counts.get(s.value, (0, 0))) for s in ACTIVE_STATUSES],
            "ages": svc.state_ages(jobs, ctx.age_thresholds),
            "status": status, "jobs": jobs, "page": page, "total": total,
            "has_more": total > page * PAGE_SIZE,
            "failed_mail": dict(sorted(failed_mail.items())),
            "searching": searching, "search": search, "search_q": search["q"], "sort": sort,
            "print_methods": [m.value for m in PrintMethod],
            "page_query": urlencode(here),
            "job_locks": svc.locks.live_for(j.id for j in jobs if j.id is not None),
        })

    def job_page(request: Request, job_id: int, error: PrintcoreError | None = None,
                 status_code: int = 200, values: dict[str, Any] | None = None) -> Response:
        job = svc.get(job_id)
        events = svc.history(job_id)
        estimate = job.latest_estimate
        prefill: dict[str, Any] = {"weight_g": "", "time_hours": ""}
        if estimate is not None:
            if estimate.grams:
                prefill["weight_g"] = estimate.grams
            if estimate.seconds:
                prefill["time_hours"] = round_up_to_half_hour(estimate.seconds / 3600)
        # The approval dialog's files (uploaded and the slicer's saves); its figures follow
        # the chosen file's estimate (adapters.web.sliced_saves).
        approval = (approval_candidates(ctx, job, (values or {}).get("authoritative_file")
                                        or request.query_params.get("file"))
                    if "approve" in allowed_events(job) else {})
        prefill.update(approval.pop("approval_prefill", {}))
        if approval and ({"rescan", "file"} & set(request.query_params)):
            approval["lock_open_action"] = "approve"  # a rescan or an adoption: dialog open
        prefill.update(values or {})
        last_sliced = job.sliced_files[-1].stored_name if job.sliced_files else ""
        cost_preview = None
        try:
            cost_preview = svc.pricing.cost_cents(job.print_method, float(prefill["weight_g"]))
        except (ValueError, TypeError, ValidationError):
            pass
        messages = (ctx.outbox.list(subject="job", subject_id=job_id)
                    if ctx.outbox is not None else [])
        # The requote form (pending jobs): the current quote, or what was posted.
        requote = {"weight_g": job.weight_g, "time_hours": job.time_hours, "cost": "",
                   "reason": ""}
        if request.method == "POST" and request.url.path.rstrip("/").endswith("/requote"):
            requote.update({k: v for k, v in (values or {}).items() if k in requote})
        return render(request, "staff/job.html", {
            # Taking and giving back a soft lock is kept out of the history list (the API
            # keeps every event); a deliberate take-over shows.
            "job": job, "events": [e for e in reversed(events) if e.kind not in QUIET_EVENTS],
            "allowed": allowed_events(job),
            "overrides": allowed_overrides(job), "requote": requote,
            "messages": messages,
            "staff": ctx.staff.list(), "current_staff": request.session.get("staff_name"),
            "reasons": REJECTION_REASONS, "prefill": prefill, "estimate": estimate,
            "authoritative_default": job.authoritative_file or last_sliced,
            "error": error, "fields": getattr(error, "fields", {}) if error else {},
            "pricing": svc.pricing, "cost_preview": cost_preview,
            "pickup": pickup_preview(svc.pricing, job, (values or {}).get("grams", job.weight_g)),
            **thumbnail_context(ctx, job),
            **lock_context(ctx, request, job_id),
            **details_context(ctx),
            **approval,
            **slicer_link_context(ctx.opener_links, ctx.files, svc.clock.now(), job,
                                  str(request.session.get("ws") or "")),
            "rate": per_gram(svc.pricing.rate(job.print_method)),
            "minimum_applies": cost_preview is not None
            and cost_preview == svc.pricing.minimum_cents
            and svc.pricing.material_cents(job.print_method, float(prefill["weight_g"]))
            < svc.pricing.minimum_cents,
        }, status_code=status_code)

    async def job_detail(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        try:
            return job_page(request, int(request.path_params["job_id"]))
        except NotFoundError as err:
            return render(request, "error.html", {"error": err}, status_code=404)

    async def download(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        try:
            job = svc.get(int(request.path_params["job_id"]))
            path = ctx.files.path_of(job, request.path_params["name"])
        except NotFoundError as err:
            return render(request, "error.html", {"error": err}, status_code=404)
        return FileResponse(path, filename=path.name)

    async def upload_sliced(request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        try:
            ws = workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        try:
            # The CSRF token is the form's first field: checked before any file byte is kept.
            staged, estimate, fields = await receive_sliced_file(
                ctx, request, before_file=lambda form: require_csrf(
                    request, form.get("csrf_token")))
        except PrintcoreError as err:
            return job_page(request, job_id, err, status_for(err))
        name = acting_name(request, fields)
        try:
            version = optional_version(fields.get("version"))
        except PrintcoreError as err:
            ctx.files.discard(staged)
            return job_page(request, job_id, err, status_for(err))
        try:
            svc.add_sliced_file(job_id, Actor.staff(name, ws), staged, estimate, version)
        except PrintcoreError as err:
            return job_page(request, job_id, err, status_for(err))
        remember_if_unset(request, name)
        note = "Sliced file added."
        if estimate.known:
            note += " The approval form is filled in from the slicer's estimate."
        else:
            note += " The slicer left no estimate in it: enter weight and time by hand."
        request.session["flash"] = note
        return RedirectResponse(f"/staff/jobs/{job_id}", status_code=303)

    async def act(request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        event = request.path_params["event"]
        form = await request.form()
        try:
            ws = workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        name = acting_name(request, form)
        values = {k: str(v) for k, v in form.items() if k not in ("csrf_token", REPROMPT_FIELD)}
        try:
            require_csrf(request, str(form.get("csrf_token", "")))
            who = Actor.staff(name, ws)
            version = _version(form)
            reason = str(form.get("reason", "")).strip()
            if event == "approve":
                chosen = str(form.get("authoritative_file", ""))
                weight, hours = _float(form, "weight_g"), _float(form, "time_hours")
                if chosen.startswith(SAVE_CHOICE_PREFIX):  # a slicer's save: adopt it first
                    stored, estimate = await adopt_save(ctx, job_id, who, chosen, version)
                    remember_if_unset(request, name)
                    version = None if version is None else version + 1
                    chosen = values["authoritative_file"] = stored.stored_name
                    if not prefill_agrees(estimate, weight, hours):
                        request.session["flash"] = adopted_note(stored, estimate)
                        return RedirectResponse(
                            f"/staff/jobs/{job_id}?{urlencode({'file': chosen})}#approve-form",
                            status_code=303)
                svc.approve(job_id, who, weight, hours, chosen, version)  # type: ignore[arg-type]
            elif event == "reject":
                svc.reject(job_id, who, [str(r) for r in form.getlist("reasons")],
                           str(form.get("custom_reason", "")), version)
            elif event in ("force_confirm", "fail_print", "revert_completion", "revert_pickup"):
                getattr(svc, event)(job_id, who, reason, version)
            elif event == "start_print":
                svc.start_print(job_id, who, str(form.get("printer", "")), version)
            elif event == "complete":
                svc.complete(job_id, who, version)
            elif event == "resend_confirmation":
                svc.resend_confirmation(job_id, who, version)
            elif event == "requote":
                try:
                    svc.requote(job_id, who, _float(form, "weight_g"),  # type: ignore[arg-type]
                                _float(form, "time_hours"), reason,  # type: ignore[arg-type]
                                _cents(form, "cost"), version)
                except ValidationError as err:
                    if "cost_cents" in err.fields:  # the form asks for dollars
                        err.fields["cost"] = err.fields.pop("cost_cents")
                    raise
            elif event == "review":
                svc.mark_reviewed(job_id, who, version)
            elif event == "unreview":
                svc.unmark_reviewed(job_id, who, version)
            elif event == "notes":
                svc.set_staff_notes(job_id, who, str(form.get("notes", "")), version)
            elif event == "edit":
                svc.edit_details(job_id, who, form_changes(svc, job_id, form), version)
            elif event == "pick_up":
                svc.pick_up(job_id, who, _float(form, "grams"),  # type: ignore[arg-type]
                            str(form.get("txn_no", "")), str(form.get("picked_up_by", "")),
                            version, str(form.get("override_reason", "")).strip() or None,
                            charge_quote=form.get("charge_quote") == "1")
            elif event == "delete":
                svc.get(job_id)  # an unknown job is a 404 before the password is asked
                require_password_again(ctx, form)
                svc.delete(job_id, who, reason, version)
                remember_if_unset(request, name)
                request.session["flash"] = f"Job {job_id} deleted; its history is kept."
                return RedirectResponse("/staff", status_code=303)
            else:
                raise NotFoundError(f"Unknown action {event!r}.")
        except NotFoundError as err:
            return render(request, "error.html", {"error": err}, status_code=404)
        except PrintcoreError as err:
            return job_page(request, job_id, err, status_for(err), values)
        remember_if_unset(request, name)
        request.session["flash"] = DONE_MESSAGES.get(event, "Done.")
        return RedirectResponse(f"/staff/jobs/{job_id}", status_code=303)

    async def retry_message(request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        message_id = int(request.path_params["message_id"])
        form = await request.form()
        try:
            ws = workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        name = acting_name(request, form)
        try:
            require_csrf(request, str(form.get("csrf_token", "")))
            if ctx.outbox is None:
                raise NotFoundError("Messages are not set up in this process.")
            message = ctx.outbox.get(message_id)
            if (message.subject, message.subject_id) != ("job", job_id):
                raise NotFoundError(f"Job {job_id} has no message {message_id}.")
            # A failed email goes to the job's address as it is now (corrected since?).
            ctx.outbox.retry(message_id, Actor.staff(name, ws),
                             recipient=svc.get(job_id).email)
        except NotFoundError as err:
            return render(request, "error.html", {"error": err}, status_code=404)
        except PrintcoreError as err:
            return job_page(request, job_id, err, status_for(err))
        request.session["flash"] = f"Message {message_id} will be sent again now."
        return RedirectResponse(f"/staff/jobs/{job_id}", status_code=303)

    return [
        Route("/staff/login", login_page),
        Route("/staff/login", login, methods=["POST"]),
        Route("/staff/logout", logout, methods=["POST"]),
        Route("/staff", dashboard),
        Route("/staff/jobs/{job_id:id}", job_detail),
        Route("/staff/jobs/{job_id:id}/files", upload_sliced, methods=["POST"]),
        Route("/staff/jobs/{job_id:id}/files/{name}", download),
        Route("/staff/jobs/{job_id:id}/messages/{message_id:id}/retry", retry_message,
              methods=["POST"]),
        Route("/staff/jobs/{job_id:id}/{event}", act, methods=["POST"]),
        *printer_routes(ctx, render),
        *identity_routes(ctx, render),
        *setup_routes(ctx, render),
    ]
