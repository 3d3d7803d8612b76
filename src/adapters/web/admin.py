"""The admin area, ``/staff/admin`` (issue 13): staff, password, workstations, settings,
lists, outbox and diagnostics. The integrity audit (``/staff/admin/audit``) and
retention (``/staff/admin/retention``) pages are their own modules; this one links to them.

Pages (GET, staff login required, else 303 to the login page):
``/staff/admin`` (overview: sections and the latest lab events), ``/staff/admin/staff``,
``/staff/admin/password``, ``/staff/admin/workstations``, ``/staff/admin/settings``
(settings in effect and the lab's lists), ``/staff/admin/outbox``,
``/staff/admin/diagnostics`` (readiness checks and the last 50 warnings).

Forms (POST with ``csrf_token`` and ``staff_name``; 303 back to their page with a
notice; refusals re-render the page with field messages: 422 bad input, 409 a
conflict, 404 unknown, 403 bad CSRF token). Destructive ones (deactivate, password
change, ending a workstation) need ``confirm_password`` (the shared staff password asked
again, :func:`adapters.web.reprompt.require_password_again`); a wrong one changes nothing.
Every action is an event with who and when (``printcore.lab_events``; an email retried
is a ``message_retried`` event on its job, and a "retry all" run is one more lab event
with the count).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from adapters import warnings_log
from adapters.web.context import WebContext
from adapters.web.identity import SESSION_KEY, acting_name, remember_if_unset
from adapters.web.render import Renderer
from adapters.web.reprompt import require_password_again
from adapters.web.responses import status_for
from adapters.web.security import require_csrf, workstation
from printcore.errors import (
    AuthenticationError,
    NotFoundError,
    PrintcoreError,
    StorageError,
    ValidationError,
)
from printcore.events import Actor
from printcore.requests.service import REJECTION_REASONS
from printcore.staff import MIN_PASSWORD_LENGTH

__all__ = ["ADMIN_EVENT_TITLES", "SECTIONS", "SETTING_DESCRIPTIONS", "admin_routes"]

PREFIX = "/staff/admin"

#: What each setting (``entrypoints.settings.Settings`` field) is for, one line each.
#: A unit test fails when a field has none (tests/unit/test_staff_admin.py).
SETTING_DESCRIPTIONS: dict[str, str] = {
    "home": "PRINTCORE_HOME: the folder of the embedded default (database, storage, mail, secret key).",
    "database_url": "DATABASE_URL: the database in use (password masked); unreachable is a hard error, never a fallback.",
    "database_url_is_default": "True when DATABASE_URL is unset and the embedded SQLite file is used.",
    "storage_root": "PRINTCORE_STORAGE: the folder holding every job's files, one subfolder per state.",
    "mail_dir": "Where the file mail backend writes .eml files.",
    "mail_from": "PRINTCORE_MAIL_FROM: the From address of every email to students.",
    "secret_key": "PRINTCORE_SECRET_KEY: signs session cookies and emailed links (masked).",
    "staff_password": "PRINTCORE_STAFF_PASSWORD: a first staff password given at setup (masked).",
    "timezone": "PRINTCORE_TIMEZONE: the lab's zone; times are stored in UTC and shown in it.",
    "base_url": "PRINTCORE_BASE_URL: the address used in emailed links.",
    "host": "PRINTCORE_HOST: the address the web server listens on.",
    "port": "PRINTCORE_PORT: the port the web server listens on.",
    "max_upload_bytes": "PRINTCORE_MAX_UPLOAD_MB: the largest model file a student may upload (shown in bytes).",
    "filament_cents_per_gram": "PRINTCORE_FILAMENT_CENTS_PER_GRAM: filament price in cents per gram.",
    "resin_cents_per_gram": "PRINTCORE_RESIN_CENTS_PER_GRAM: resin price in cents per gram.",
    "minimum_cents": "PRINTCORE_MINIMUM_CENTS: the minimum charge of a print, in cents.",
    "confirmation_days": "PRINTCORE_CONFIRMATION_DAYS: how long a student's confirmation link works (days).",
    "lab_name": "PRINTCORE_LAB_NAME: the lab's name on pages and emails.",
    "https_only": "PRINTCORE_HTTPS_ONLY: session cookies only over HTTPS (Secure flag).",
    "printers_file": "PRINTCORE_PRINTERS_FILE: the YAML file naming the lab's printers.",
    "access_hours": "PRINTCORE_ACCESS_HOURS: weekly opening windows; no queue offers outside them.",
    "claim_window_minutes": "PRINTCORE_CLAIM_WINDOW_MINUTES: minutes an offered member has to claim a printer.",
    "start_window_minutes": "PRINTCORE_START_WINDOW_MINUTES: minutes a claimer has to start printing.",
    "notdone_default_minutes": "PRINTCORE_NOTDONE_MINUTES: minutes added when /notdone gives no time.",
    "max_open_tickets": "PRINTCORE_MAX_OPEN_TICKETS: queue places one member may hold at once.",
    "sweep_seconds": "PRINTCORE_SWEEP_SECONDS: how often deadlines (claim, start windows) are enforced.",
    "inspect_workers": "PRINTCORE_INSPECT_WORKERS: processes checking uploaded models at once (each up to ~0.5 GB for a 200 MB file).",
    "inspect_queue_max": "PRINTCORE_INSPECT_QUEUE_MAX: uploads waiting to be checked past which new uploads are asked to retry (503); 0 = no limit.",
    "discord_token": "DISCORD_TOKEN: the queue bot's Discord token (masked).",
    "discord_guild_id": "DISCORD_GUILD_ID: the Discord server the bot serves.",
    "discord_channel_id": "DISCORD_CHANNEL_ID: the channel the bot posts queue news to.",
    "redis_url": "REDIS_URL: Redis for the Dramatiq worker and limits; unset, the web process delivers mail itself.",
    "mail_backend": "PRINTCORE_MAIL_BACKEND: file (.eml files in the mail folder) or smtp.",
    "smtp_host": "SMTP_HOST: the mail server used by the smtp backend.",
    "smtp_port": "SMTP_PORT: the mail server's port (587 starttls, 465 ssl).",
    "smtp_username": "SMTP_USERNAME: the account used to log in to the mail server.",
    "smtp_password": "SMTP_PASSWORD: that account's password (masked).",
    "smtp_tls": "SMTP_TLS: starttls, ssl or none.",
    "smtp_timeout_seconds": "SMTP_TIMEOUT: seconds to wait for the mail server.",
    "reply_to": "PRINTCORE_REPLY_TO: where students' replies to emails go.",
    "lab_address": "PRINTCORE_LAB_ADDRESS: where to pick prints up, as told in emails.",
    "pickup_hours": "PRINTCORE_PICKUP_HOURS: when prints can be picked up, as told in emails.",
    "outbox_retry_seconds": "PRINTCORE_OUTBOX_RETRY_SECONDS: first wait before a failed send is tried again (doubles).",
    "outbox_max_attempts": "PRINTCORE_OUTBOX_MAX_ATTEMPTS: tries before a message is marked failed.",
    "outbox_lease_seconds": "PRINTCORE_OUTBOX_LEASE_SECONDS: how long one deliverer holds a message.",
    "worker_threads": "PRINTCORE_WORKER_THREADS: delivery threads in the worker.",
    "opener_secret": "PRINTCORE_OPENER_SECRET: signs print3d:// slicer links (masked; unset, no links).",
    "base_url_is_default": "True when PRINTCORE_BASE_URL is unset and links follow the listening address.",
    "login_failures_per_minute": "PRINTCORE_LOGIN_FAILURES_PER_MINUTE: wrong passwords allowed per minute (0: no limit).",
    "submissions_per_hour": "PRINTCORE_SUBMISSIONS_PER_HOUR: uploads allowed per address per hour (0: no limit).",
    "submission_mail_per_hour": "PRINTCORE_SUBMISSION_MAIL_PER_HOUR: submission emails allowed per hour (0: no limit).",
    "trusted_proxies": "PRINTCORE_TRUSTED_PROXIES: proxies whose X-Forwarded-For is believed.",
    "confirmation_reminder_hours": "PRINTCORE_CONFIRMATION_REMINDER_HOURS: hours before a link expires that a reminder goes out (0: none).",
    "reminder_check_seconds": "PRINTCORE_REMINDER_CHECK_SECONDS: how often reminders due are looked for.",
    "lock_seconds": "PRINTCORE_LOCK_SECONDS: how long a job's soft lock lasts without a heartbeat.",
    "age_amber_hours": "PRINTCORE_AGE_AMBER_HOURS: hours in a state before a dashboard card turns amber.",
    "age_red_hours": "PRINTCORE_AGE_RED_HOURS: hours in a state before a dashboard card turns red.",
    "pickup_charge": "PRINTCORE_PICKUP_CHARGE: what pickup charges: weighed, quote or lower.",
    "colors": "PRINTCORE_COLORS: the colours offered on the forms (other is always offered too).",
    "finance_email": "PRINTCORE_FINANCE_EMAIL: where the emailed payments export goes by default.",
    "outbox_alert_seconds": "PRINTCORE_OUTBOX_ALERT_SECONDS: readiness fails when a message has waited longer.",
    "storage_min_free_mb": "PRINTCORE_STORAGE_MIN_FREE_MB: readiness fails below this much free storage (MB).",
    "heartbeat_max_age_seconds": "PRINTCORE_HEARTBEAT_MAX_AGE_SECONDS: a worker's or bot's heartbeat older than this fails readiness.",
}

#: Titles of the lab events (``printcore.lab_events``) on the overview.
ADMIN_EVENT_TITLES: dict[str, str] = {
    "staff_added": "Staff member added",
    "staff_renamed": "Staff member renamed",
    "staff_deactivated": "Staff member deactivated",
    "staff_reactivated": "Staff member reactivated",
    "password_changed": "Staff password changed",
    "session_ended": "Workstation signed out",
    "outbox_retried": "Failed messages sent again",
    "audit_repaired": "Storage repaired",
    "retention_applied": "Retention run",
    "export_emailed": "Payments export emailed",
}

SECTIONS: list[tuple[str, str, str]] = [
    ("staff", "Staff members", "Add, rename, deactivate and reactivate."),
    ("password", "Staff password", "Change the shared password; other workstations sign out."),
    ("workstations", "Signed-in workstations", "Who is signed in; end a login."),
    ("settings", "Settings and lists", "Settings in effect and the lab's lists."),
    ("outbox", "Outbox", "Failed and waiting messages; send them again."),
    ("diagnostics", "Diagnostics", "Readiness checks and the last warnings."),
    ("audit", "Storage integrity", "Check storage against the database; safe repairs."),
    ("retention", "Retention", "Archive or prune old finished jobs."),
]

Handler = Callable[[Request], Awaitable[Response]]


def _details(details: dict[str, Any], limit: int = 200) -> str:
    """An event's details on one line, ``key: value`` each, long values shortened."""
    parts = []
    for key, value in details.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        text = " ".join(str(value).split())
        parts.append(f"{key.replace('_', ' ')}: {text[:limit]}{'…' if len(text) > limit else ''}")
    return " · ".join(parts)


def admin_routes(ctx: WebContext, render: Renderer) -> list[BaseRoute]:
    """The admin area's routes (registered before ``staff_routes``). Installs the
    process's warnings buffer (:func:`adapters.warnings_log.install`) once."""
    warnings = warnings_log.install()

    def page(request: Request, section: str, extra: dict[str, Any] | None = None,
             error: PrintcoreError | None = None, status_code: int = 200) -> Response:
        context: dict[str, Any] = {
            "section": section, "sections": SECTIONS, "error": error,
            "fields": getattr(error, "fields", {}) if error else {},
            "values": {}, **(extra or {}),
        }
        return render(request, f"staff/admin_{section}.html", context, status_code=status_code)

    def overview_context(request: Request) -> dict[str, Any]:
        events = ctx.staff.lab_history(50)
        return {"events": events, "titles": ADMIN_EVENT_TITLES, "details": _details}

    def staff_context(request: Request) -> dict[str, Any]:
        return {"members": ctx.staff.list(active_only=False)}

    def password_context(request: Request) -> dict[str, Any]:
        return {"min_length": MIN_PASSWORD_LENGTH}

    def workstations_context(request: Request) -> dict[str, Any]:
        return {"sessions": ctx.staff.sessions(), "own_sid": request.session.get("sid")}

    def settings_context(request: Request) -> dict[str, Any]:
        pricing = ctx.requests.pricing
        return {
            "settings": [(name, value, SETTING_DESCRIPTIONS.get(name, "(no description yet)"))
                         for name, value in ctx.settings_in_effect.items()],
            "colors": ctx.colors, "reasons": REJECTION_REASONS, "pricing": pricing,
            "access_hours": ctx.access_hours, "printers": ctx.printer_choices,
        }

    def outbox_context(request: Request) -> dict[str, Any]:
        if ctx.outbox is None:
            return {"outbox_missing": True, "failed": [], "waiting": []}
        return {"outbox_missing": False, "failed": ctx.outbox.list(status="failed", limit=200),
                "waiting": ctx.outbox.list(status="pending", limit=200)}

    async def diagnostics_context(request: Request) -> dict[str, Any]:
        readiness = getattr(request.app.state, "readiness", None)
        report = await run_in_threadpool(readiness.run) if readiness is not None else None
        return {"report": report, "warnings": warnings.latest()}

    contexts: dict[str, Callable[[Request], dict[str, Any]]] = {
        "overview": overview_context, "staff": staff_context, "password": password_context,
        "workstations": workstations_context, "settings": settings_context,
        "outbox": outbox_context,
    }

    def login_redirect(request: Request) -> Response:
        return RedirectResponse(f"/staff/login?next={request.url.path}", status_code=303)

    def show(section: str) -> Handler:
        async def handler(request: Request) -> Response:
            try:
                workstation(request, ctx)
            except AuthenticationError:
                return login_redirect(request)
            if section == "diagnostics":
                return page(request, section, await diagnostics_context(request))
            return page(request, section, contexts[section](request))
        return handler

    Action = Callable[[Request, FormData, Actor, str], str]

    def action(section: str, do: Action, target: str | None = None) -> Handler:
        """A form post: staff login, CSRF, then ``do(request, form, actor, workstation)``
        which makes the change and returns the notice; refusals re-render ``section``."""
        async def handler(request: Request) -> Response:
            form = await request.form()
            try:
                ws = workstation(request, ctx)
            except AuthenticationError:
                return login_redirect(request)
            name = acting_name(request, form)
            try:
                require_csrf(request, str(form.get("csrf_token", "")))
                notice = do(request, form, Actor.staff(name, ws), ws)
            except PrintcoreError as err:
                values = {k: str(v) for k, v in form.items()
                          if k not in ("csrf_token", "confirm_password") and "password" not in k}
                extra = contexts[section](request)
                extra["values"] = values
                return page(request, section, extra, err, status_for(err))
            remember_if_unset(request, name)
            request.session["flash"] = notice
            return RedirectResponse(target or f"{PREFIX}/{section}", status_code=303)
        return handler

    # Staff members -----------------------------------------------------------------

    def add_member(request: Request, form: FormData, actor: Actor, ws: str) -> str:
        member = ctx.staff.add(str(form.get("name", "")), actor, refuse_existing=True)
        return f"{member.name} was added to the staff list."

    def rename_member(request: Request, form: FormData, actor: Actor, ws: str) -> str:
        old = str(form.get("name", ""))
        member = ctx.staff.rename(old, str(form.get("new_name", "")), actor)
        if request.session.get(SESSION_KEY) == old:  # this workstation's choice follows
            request.session[SESSION_KEY] = member.name
        return (f"{old} is now {member.name}. Past events still show {old}: the log is "
                "never rewritten.")

    def deactivate_member(request: Request, form: FormData, actor: Actor, ws: str) -> str:
        require_password_again(ctx, form)
        name = str(form.get("name", ""))
        ctx.staff.deactivate(name, actor)
        return f"{name} was deactivated: no longer on the staff list (history kept)."

    def reactivate_member(request: Request, form: FormData, actor: Actor, ws: str) -> str:
        name = str(form.get("name", ""))
        ctx.staff.reactivate(name, actor)
        return f"{name} is back on the staff list."

    # The password and workstations -------------------------------------------------

    def change_password(request: Request, form: FormData, actor: Actor, ws: str) -> str:
        require_password_again(ctx, form)
        session = ctx.staff.change_password(str(form.get("password", "")),
                                            str(form.get("password_again", "")), actor, ws)
        request.session["sid"] = session.id  # this workstation stays signed in
        request.session["exp"] = int(time.time()) + ctx.session_hours * 3600
        return ("The staff password was changed. Every other workstation was signed out; "
                "this one stays signed in.")

    def end_workstation(request: Request, form: FormData, actor: Actor, ws: str) -> str:
        require_password_again(ctx, form)
        session_id = str(form.get("session_id", ""))
        if session_id and session_id == request.session.get("sid"):
            raise ValidationError("That is this workstation's own login; use Log out instead.",
                                  {"session_id": "Use Log out for this workstation."})
        ended = ctx.staff.end_session(session_id, f"ended by {actor.name}", actor)
        return f"The login of {ended.workstation} was ended; it must log in again."

    # The outbox ------------------------------------------------------------------------

    def outbox_service() -> Any:
        if ctx.outbox is None:
            raise StorageError("Messages are not set up in this process.")
        return ctx.outbox

    def readdress(message: Any) -> str | None:
        """A job's email goes to the job's address as it is now (corrected since?)."""
        if message.subject != "job" or message.channel != "email":
            return None
        try:
            return str(ctx.requests.get(message.subject_id).email)
        except NotFoundError:
            return None  # a deleted job: its row's address

    def retry_one(request: Request, form: FormData, actor: Actor, ws: str) -> str:
        outbox = outbox_service()
        message_id = str(form.get("message_id", ""))
        if not message_id.isdigit():
            raise NotFoundError(f"No message {message_id!r}; reload the outbox.")
        message = outbox.get(int(message_id))
        outbox.retry(message.id, actor, recipient=readdress(message))
        return f"Message {message.id} will be sent again now."

    def retry_failed(request: Request, form: FormData, actor: Actor, ws: str) -> str:
        # One unit of work: every failed row back to pending with its message_retried
        # event, and one outbox_retried lab event (count and ids). The corrected
        # addresses are read first, outside that unit of work.
        outbox = outbox_service()
        addresses = {m.id: readdress(m) for m in outbox.list(status="failed", limit=10_000)}
        retried = outbox.retry_failed(actor, recipient_for=lambda m: addresses.get(m.id))
        if not retried:
            return "No failed messages to send again."
        plural = "s" if len(retried) != 1 else ""
        return f"{len(retried)} failed message{plural} will be sent again now."

    return [
        Route(PREFIX, show("overview")),
        Route(f"{PREFIX}/staff", show("staff")),
        Route(f"{PREFIX}/staff/add", action("staff", add_member), methods=["POST"]),
        Route(f"{PREFIX}/staff/rename", action("staff", rename_member), methods=["POST"]),
        Route(f"{PREFIX}/staff/deactivate", action("staff", deactivate_member),
              methods=["POST"]),
        Route(f"{PREFIX}/staff/reactivate", action("staff", reactivate_member),
              methods=["POST"]),
        Route(f"{PREFIX}/password", show("password")),
        Route(f"{PREFIX}/password", action("password", change_password), methods=["POST"]),
        Route(f"{PREFIX}/workstations", show("workstations")),
        Route(f"{PREFIX}/workstations/end", action("workstations", end_workstation),
              methods=["POST"]),
        Route(f"{PREFIX}/settings", show("settings")),
        Route(f"{PREFIX}/outbox", show("outbox")),
        Route(f"{PREFIX}/outbox/retry", action("outbox", retry_one), methods=["POST"]),
        Route(f"{PREFIX}/outbox/retry-failed", action("outbox", retry_failed),
              methods=["POST"]),
        Route(f"{PREFIX}/diagnostics", show("diagnostics")),
    ]
