"""Student pages (no login): the submission form, the status page, the confirmation link."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adapters.web.context import WebContext
from adapters.web.intake import (
    SUBMISSION_FIELDS,
    FormRejected,
    accepted_model_extensions,
    receive_submission,
)
from adapters.web.render import Renderer
from adapters.web.responses import status_for
from adapters.web.security import CsrfError, client_address, csrf_token, require_csrf
from adapters.web.student_status import status_facts
from printcore.errors import (
    FileTooLargeError,
    NotFoundError,
    PrintcoreError,
    RateLimitedError,
    TokenError,
    TokenUsedError,
    ValidationError,
)
from printcore.requests.pricing import format_cents, per_gram

__all__ = ["student_routes"]


def student_routes(ctx: WebContext, render: Renderer) -> list[Route]:
    svc = ctx.requests

    def form_page(request: Request, values: dict[str, str] | None = None,
                  error: PrintcoreError | None = None, status: int = 200) -> Response:
        return render(
            request,
            "student/form.html",
            {
                "values": values or {name: "" for name in SUBMISSION_FIELDS},
                "error": error,
                "fields": getattr(error, "fields", {}) if error else {},
                "accept": accepted_model_extensions(),
                "max_mb": ctx.max_upload_bytes // 1_000_000,
                "filament_rate": per_gram(svc.pricing.filament_cents_per_gram),
                "resin_rate": per_gram(svc.pricing.resin_cents_per_gram),
                "minimum": format_cents(svc.pricing.minimum_cents),
                "color_choices": ctx.colors, "printer_choices": ctx.printer_choices,
            },
            status_code=status,
        )

    async def home(request: Request) -> Response:
        csrf_token(request)
        return form_page(request)

    def limited(request: Request, err: RateLimitedError,
                values: dict[str, str] | None = None) -> Response:
        response = form_page(request, values, err, 429)
        response.headers["Retry-After"] = str(err.retry_after)
        return response

    async def submit(request: Request) -> Response:
        client = client_address(request)
        try:
            if ctx.throttle is not None:
                ctx.throttle.check_submission(client)  # before reading a byte of the body
        except RateLimitedError as err:
            return limited(request, err)
        # The CSRF token is the form's first field (before the file): the streaming parser
        # checks it before a byte of the file is kept, and it never appears in a URL.
        try:
            submission, staged = await receive_submission(
                ctx, request,
                before_file=lambda form: require_csrf(request, form.get("csrf_token")))
        except CsrfError as err:
            return form_page(request, error=err, status=403)
        except FormRejected as rejected:
            return form_page(request, rejected.values, rejected.error,
                             status_for(rejected.error))
        except (FileTooLargeError, ValidationError) as err:
            return form_page(request, error=err, status=status_for(err))
        if ctx.throttle is not None:
            try:
                ctx.throttle.check_submission(client, submission.email)
            except RateLimitedError as err:
                ctx.files.discard(staged)
                return limited(request, err, {k: getattr(submission, k)
                                              for k in SUBMISSION_FIELDS})
        job = svc.submit(submission, staged)
        if ctx.throttle is not None:
            ctx.throttle.submitted(client, submission.email)
        assert job.id is not None
        token = svc.status_token(job.id)
        return RedirectResponse(f"/status/{token}?new=1", status_code=303)

    async def status(request: Request) -> Response:
        try:
            job = svc.job_for_status_token(request.path_params["token"])
        except (TokenError, NotFoundError) as err:
            return render(request, "student/token_error.html", {"error": err},
                          status_code=status_for(err))
        return render(
            request, "student/status.html",
            {"job": job, "new": request.query_params.get("new") == "1",
             **status_facts(svc, job)},  # the print line, the link's expiry
        )

    def used_link(request: Request, token: str, err: TokenUsedError) -> Response:
        """A used link is mostly a student clicking the email again after confirming."""
        try:
            job = svc.job_for_confirmation_token(token)
        except PrintcoreError:
            job = None
        if job is not None and job.status not in ("uploaded", "pending", "rejected"):
            assert job.id is not None
            return render(request, "student/already_confirmed.html",
                          {"job": job, "status_token": svc.status_token(job.id)},
                          status_code=200)
        if job is not None and job.status == "pending":
            # Replaced, not used: by a corrected quote? Then say so, with the new figures.
            try:
                requote = svc.replacing_requote(token)
            except PrintcoreError:
                requote = None
            if requote is not None:
                assert job.id is not None
                return render(request, "student/quote_changed.html",
                              {"job": job, "requote": requote, "error": err,
                               "status_token": svc.status_token(job.id)}, status_code=400)
        return render(request, "student/token_error.html", {"error": err}, status_code=400)

    async def confirm_page(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            job = svc.check_confirmation(token)
        except TokenUsedError as err:
            return used_link(request, token, err)
        except (TokenError, NotFoundError) as err:
            return render(request, "student/token_error.html", {"error": err},
                          status_code=status_for(err))
        material = svc.pricing.material_cents(job.print_method, job.weight_g or 0)
        return render(request, "student/confirm.html",
                      {"job": job, "token": token, "csrf": csrf_token(request),
                       "rate": per_gram(svc.pricing.rate(job.print_method)),
                       "minimum_applies": (job.cost_cents or 0) > material,
                       "minimum": format_cents(svc.pricing.minimum_cents),
                       "status_token": svc.status_token(job.id or 0)})

    async def confirm(request: Request) -> Response:
        token = request.path_params["token"]
        form = await request.form()
        try:
            require_csrf(request, str(form.get("csrf_token", "")))
            job = svc.confirm(token)
        except CsrfError as err:
            return render(request, "error.html", {"error": err}, status_code=403)
        except TokenUsedError as err:
            return used_link(request, token, err)
        except (TokenError, NotFoundError) as err:
            return render(request, "student/token_error.html", {"error": err},
                          status_code=status_for(err))
        except PrintcoreError as err:
            return render(request, "error.html", {"error": err}, status_code=status_for(err))
        assert job.id is not None
        return RedirectResponse(f"/status/{svc.status_token(job.id)}?confirmed=1",
                                status_code=303)

    return [
        Route("/", home),
        Route("/submit", submit, methods=["POST"]),
        Route("/status/{token}", status),
        Route("/confirm/{token}", confirm_page),
        Route("/confirm/{token}", confirm, methods=["POST"]),
    ]
