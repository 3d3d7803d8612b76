"""The approval dialog's sliced files: those uploaded and the slicer's saves in the job's
folder (:mod:`printcore.requests.saves`), for the staff page and the JSON API.

* ``GET /api/v1/jobs/{job_id}/sliced-candidates``: ``{"job_id", "version",
  "candidates": [candidate...], "recommended": str | null, "skipped": [{"name",
  "reason"}]}``, best first. A candidate is ``{"name", "choice", "source": "uploaded" |
  "slicer save", "known", "extension", "size_bytes", "at" (UTC ISO), "estimate":
  {"seconds", "hours", "grams", "slicer", "source"} | null, "prefill": {"weight_g"?,
  "time_hours"?}, "recommended": bool}``; ``choice`` is what ``authoritative_file`` takes
  in the approval form (``"saved:" + name`` for a save not adopted yet).
* ``POST /api/v1/jobs/{job_id}/sliced-candidates/adopt``: body ``{"staff_name", "name",
  "version"?}`` (``name``: a save's name, with or without ``saved:``). The save is copied
  from the folder, checked exactly like an uploaded sliced file (size limit, the
  inspector reads it and its estimate), stored under a generated name, and the slicer's
  file removed; one ``add_sliced_file`` event with ``source: "slicer save"``. Answers 201
  as ``POST /jobs/{job_id}/files``; 401, 404 (no such job), 409 (stale version, job
  printed), 413 (too large), 415 (not a sliced file, a link, empty, still being written),
  422 (a bad name, or the file is no longer there: ``fields.authoritative_file`` says so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.serialization import to_json_dict
from adapters.web.context import WebContext
from adapters.web.numbers import json_version
from adapters.web.responses import JSONResponse
from adapters.web.security import workstation
from printcore.errors import (
    NotFoundError,
    StorageError,
    UnsupportedFileError,
    ValidationError,
)
from printcore.requests.job import Actor, Job, JobFile
from printcore.requests.saves import (
    SAVE_CHOICE_PREFIX,
    SavesScan,
    SlicedCandidate,
    candidates,
    estimate_prefill,
    save_name_problem,
)
from printcore.slicing import SliceEstimate

__all__ = ["adopt_save", "adopted_note", "approval_candidates", "candidate_json", "sliced_saves_api_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]
BodyReader = Callable[[Request], Awaitable[dict[str, Any]]]
JobJson = Callable[[Job], dict[str, Any]]

FIELD = "authoritative_file"


def _scan(ctx: WebContext, job: Job) -> tuple[SavesScan, str | None]:
    try:
        return ctx.files.scan_saves(job, ctx.max_upload_bytes), None
    except (StorageError, OSError) as err:
        message = err.message if isinstance(err, StorageError) else str(err)
        return SavesScan(), f"The job's folder could not be read: {message}"


def approval_candidates(ctx: WebContext, job: Job, selected: str | None = None
                        ) -> dict[str, Any]:
    """The approval dialog's template context: ``candidates`` (ranked, best first),
    ``skipped`` saves with reasons, ``recommended_choice``, ``chosen_file`` (``selected``
    when it is a candidate's choice, else the recommended one), ``chosen_estimate``
    (what printcore read from it; None for a save not adopted yet), ``saves_problem`` (the
    folder could not be read) and ``approval_prefill`` (``weight_g``/``time_hours`` from
    the chosen file's estimate; ``""`` where unknown; empty when there is no candidate)."""
    scan, problem = _scan(ctx, job)
    items = candidates(job, scan.saves)
    recommended = items[0].choice if items else ""
    chosen = next((c for c in items if c.choice == selected), items[0] if items else None)
    prefill: dict[str, Any] = {}
    if chosen is not None:
        prefill = {"weight_g": "", "time_hours": "", **estimate_prefill(chosen.estimate)}
    return {"candidates": items, "skipped": scan.skipped, "recommended_choice": recommended,
            "chosen_file": chosen.choice if chosen else "", "saves_problem": problem,
            "chosen_estimate": chosen.estimate if chosen else None,
            "approval_prefill": prefill}


def _estimate_json(estimate: SliceEstimate | None) -> dict[str, Any] | None:
    if estimate is None:
        return None
    return {"seconds": estimate.seconds, "hours": estimate.hours, "grams": estimate.grams,
            "slicer": estimate.slicer, "source": estimate.source}


def candidate_json(candidate: SlicedCandidate, recommended: bool) -> dict[str, Any]:
    """One candidate as JSON (see the module docstring)."""
    return {"name": candidate.name, "choice": candidate.choice, "source": candidate.source,
            "known": candidate.known, "extension": candidate.extension,
            "size_bytes": candidate.size_bytes, "at": candidate.at.isoformat(),
            "estimate": _estimate_json(candidate.estimate),
            "prefill": estimate_prefill(candidate.estimate), "recommended": recommended}


async def adopt_save(ctx: WebContext, job_id: int, actor: Actor, name: str,
                     expected_version: int | None) -> tuple[JobFile, SliceEstimate]:
    """Adopt the slicer's save ``name`` (with or without ``saved:``) from the job's folder.

    It must be one the scan offers now (so a name never becomes a path); its bytes are
    staged, read by the inspector like an upload, and handed to
    :meth:`~printcore.requests.service.PrintRequests.add_sliced_file`. Returns the stored
    file and its estimate. Raises ValidationError (bad name, no longer there),
    UnsupportedFileError, FileTooLargeError (all on the ``authoritative_file`` field),
    NotFoundError (no such job), and what ``add_sliced_file`` raises. Nothing is kept on
    any error.
    """
    if name.startswith(SAVE_CHOICE_PREFIX):
        name = name[len(SAVE_CHOICE_PREFIX):]
    problem = save_name_problem(name)
    if problem is not None:
        raise ValidationError(problem, {FIELD: problem})
    job = ctx.requests.get(job_id)
    scan, folder_problem = _scan(ctx, job)
    if folder_problem is not None:
        raise ValidationError(folder_problem, {FIELD: folder_problem})
    if name not in {s.name for s in scan.saves}:
        skipped = next((s for s in scan.skipped if s.name == name), None)
        if skipped is not None:
            raise UnsupportedFileError(f"{name} cannot be used: {skipped.reason}.", FIELD)
        if job.file(name) is not None:
            message = f"{name} is already one of the job's files; choose it by that name."
        else:
            message = f"{name} is no longer in the job's folder; rescan for newer saves."
        raise ValidationError(message, {FIELD: message})
    try:
        staged = ctx.files.stage_save(job, name, ctx.max_upload_bytes)
    except NotFoundError as gone:
        raise ValidationError(gone.message, {FIELD: gone.message}) from None
    try:
        estimate = await ctx.inspector.sliced(staged.path, staged.extension)
    except UnsupportedFileError as err:
        ctx.files.discard(staged)
        raise UnsupportedFileError(f"{name}: {err.message}", FIELD) from None
    except BaseException:
        ctx.files.discard(staged)
        raise
    stored = ctx.requests.add_sliced_file(job_id, actor, staged, estimate, expected_version,
                                          save_name=name)
    return stored, estimate


def adopted_note(stored: JobFile, estimate: SliceEstimate) -> str:
    """What the job page says after a save was adopted from the approval dialog."""
    note = f"{stored.original_name} was taken from the slicer's saves as {stored.stored_name}."
    figures = estimate_prefill(estimate)
    if figures:
        shown = []
        if "weight_g" in figures:
            shown.append(f"{figures['weight_g']:g} g")
        if "time_hours" in figures:
            shown.append(f"{figures['time_hours']:g} h")
        return (note + " The approval form now shows its slicer estimate ("
                + ", ".join(shown) + "): check it and approve.")
    return note + " Its slicer left no estimate: enter weight and time by hand, then approve."


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"{key} must be text.", {key: "Must be text."})
    value = value.strip()
    if not value:
        raise ValidationError(f"{key} is required.", {key: "Required."})
    if len(value) > limit:
        raise ValidationError(f"{key} is too long.", {key: f"At most {limit} characters."})
    return value


def sliced_saves_api_routes(ctx: WebContext, body_of: BodyReader,
                            endpoint: Callable[[Endpoint], Endpoint],
                            job_json: JobJson) -> list[Route]:
    """The two routes, for mounting under ``/api/v1`` (helpers from :mod:`adapters.web.api`)."""
    svc = ctx.requests

    async def list_candidates(request: Request) -> Response:
        workstation(request, ctx, api=True)
        job = svc.get(int(request.path_params["job_id"]))
        context = approval_candidates(ctx, job)
        items: list[SlicedCandidate] = context["candidates"]
        recommended = context["recommended_choice"] or None
        return JSONResponse({
            "job_id": job.id, "version": job.version,
            "candidates": [candidate_json(c, c.choice == recommended) for c in items],
            "recommended": recommended,
            "skipped": [{"name": s.name, "reason": s.reason} for s in context["skipped"]],
        })

    async def adopt(request: Request) -> Response:
        ws = workstation(request, ctx, api=True)
        body = await body_of(request)
        fields: dict[str, str] = {}
        values: dict[str, Any] = {}
        for key, limit in (("staff_name", 80), ("name", 300)):
            try:
                values[key] = _text(body, key, limit)
            except ValidationError as err:
                fields.update(err.fields)
        try:
            version = json_version(body)
        except ValidationError as err:
            fields.update(err.fields)
        if fields:
            raise ValidationError("Please correct the marked fields.", fields)
        job_id = int(request.path_params["job_id"])
        try:
            stored, estimate = await adopt_save(ctx, job_id, Actor.staff(values["staff_name"], ws),
                                                values["name"], version)
        except ValidationError as err:
            if FIELD in err.fields:  # the API's field is ``name``
                err.fields["name"] = err.fields.pop(FIELD)
            raise
        job = svc.get(job_id)
        prefill: dict[str, Any] = {"weight_g": None, "time_hours": None, "cost_cents": None,
                                   **estimate_prefill(estimate)}
        if prefill["weight_g"]:
            prefill["cost_cents"] = svc.pricing.cost_cents(job.print_method, prefill["weight_g"])
        return JSONResponse({"file": to_json_dict(stored), "estimate": _estimate_json(estimate),
                             "prefill": prefill, "job": job_json(job)}, status_code=201)

    return [
        Route("/jobs/{job_id:id}/sliced-candidates", endpoint(list_candidates)),
        Route("/jobs/{job_id:id}/sliced-candidates/adopt", endpoint(adopt), methods=["POST"]),
    ]
