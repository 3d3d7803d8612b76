"""Model thumbnails for staff: made once, kept beside the job's files, served as PNG.

Routes (:func:`thumbnail_routes`, mounted at the app's top level, before ``/api/v1``):

* ``GET /api/v1/jobs/{job_id}/thumbnail`` → ``image/png`` (staff: bearer token or
  session cookie). 404 JSON ``{"error": {"code": "not_found" | "no_thumbnail",
  "message"}}`` when there is no such job or no preview can be made (the message says
  why); 401 when not logged in.
* ``GET /staff/jobs/{job_id}/thumbnail.png``: the same for the staff pages (session
  cookie; otherwise a redirect to the login page); 404 text when there is none.
* ``GET /staff/jobs/{job_id}/sliced-preview.png``: the plate picture the newest sliced
  ``.gcode.3mf`` / ``.3mf`` of the job carries (read from the file each time, it is
  small); 404 when it has none.

Storage: ``<job folder>/thumbnail.png`` and ``<job folder>/thumbnail.json``, the record
``{"format": 1, "ok": bool, "reason": str | null, "source": "Metadata/plate_1.png" |
"rendered" | null, "size_mm": [x, y, z] | null, "faces": int | null, "faces_drawn": int
| null, "seconds": float | null, "model": stored name, "model_sha256": hex}``. A failed
attempt is recorded too (``ok: false`` and the reason), so it is not tried again on
every request; a new record is made when the job's model file changes (its SHA-256).
Both files move with the folder when the job changes state (the folder is copied whole),
and the storage audit only looks for the files the database lists, so they are not
reported. The first request makes the thumbnail, in the inspector's thumbnail process
with its time limit; files are written through the staging folder and renamed into
place, so a folder being copied never sees half a file.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from adapters.meshes import model_extension, sliced_extension
from adapters.meshes.thumbnails import Thumbnail, ThumbnailError
from adapters.web.context import WebContext
from adapters.web.responses import error_json, plain_error
from adapters.web.security import workstation
from printcore.errors import (
    AuthenticationError,
    NotFoundError,
    PrintcoreError,
    UnsupportedFileError,
)
from printcore.requests.job import Job, JobFile, JobStatus

__all__ = [
    "RECORD_NAME",
    "THUMBNAIL_NAME",
    "ThumbnailRecord",
    "ensure_thumbnail",
    "stored_record",
    "thumbnail_context",
    "thumbnail_routes",
]

THUMBNAIL_NAME = "thumbnail.png"
RECORD_NAME = "thumbnail.json"
RECORD_FORMAT = 1
#: How long browsers may keep a served thumbnail (seconds; staff only, so private).
CACHE_CONTROL = "private, max-age=3600"


@attrs.frozen
class ThumbnailRecord:
    """What ``thumbnail.json`` says (see the module docstring for the fields)."""

    ok: bool
    model: str
    model_sha256: str
    reason: str | None = None
    source: str | None = None
    size_mm: tuple[float, float, float] | None = None
    faces: int | None = None
    faces_drawn: int | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["size_mm"] = list(self.size_mm) if self.size_mm else None
        return {"format": RECORD_FORMAT, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ThumbnailRecord:
        size = data.get("size_mm")
        return cls(
            ok=bool(data["ok"]),
            model=str(data["model"]),
            model_sha256=str(data["model_sha256"]),
            reason=data.get("reason"),
            source=data.get("source"),
            size_mm=(float(size[0]), float(size[1]), float(size[2])) if size else None,
            faces=data.get("faces"),
            faces_drawn=data.get("faces_drawn"),
            seconds=data.get("seconds"),
        )


def _model(job: Job) -> JobFile:
    original = job.original
    if original is None or model_extension(original.stored_name) is None:
        raise NotFoundError(f"Job {job.id} has no model file to preview.")
    return original


def _folder(ctx: WebContext, job: Job) -> Path:
    if job.status == JobStatus.DELETED:
        raise NotFoundError(f"Job {job.id} was deleted; its files are gone.")
    return ctx.files.folder(job)


def stored_record(ctx: WebContext, job: Job) -> ThumbnailRecord | None:
    """The job's thumbnail record, or None when there is none for its current model file
    (never made, unreadable, made for another file, or the PNG has gone missing)."""
    try:
        folder = _folder(ctx, job)
        model = _model(job)
        record = ThumbnailRecord.from_json(
            json.loads((folder / RECORD_NAME).read_text("utf-8"))
        )
    except (NotFoundError, OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    if (record.model, record.model_sha256) != (model.stored_name, model.sha256):
        return None
    if record.ok and not (folder / THUMBNAIL_NAME).is_file():
        return None
    return record


def _write(ctx: WebContext, folder: Path, name: str, data: bytes) -> bool:
    """Put ``data`` at ``folder/name`` through the staging folder; False when the job's
    folder is gone (the job moved meanwhile: the next request makes it again)."""
    staging = ctx.files.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    temp = staging / f"{uuid.uuid4().hex}.part"
    try:
        temp.write_bytes(data)
        os.replace(temp, folder / name)
        return True
    except FileNotFoundError:
        return False
    finally:
        temp.unlink(missing_ok=True)


async def _make(ctx: WebContext, job: Job) -> tuple[ThumbnailRecord, bytes | None]:
    model = _model(job)
    path = ctx.files.path_of(job, model.stored_name)  # NotFoundError: missing from storage
    extension = model_extension(model.stored_name) or ""
    try:
        made: Thumbnail = await ctx.inspector.thumbnail(path, extension)
    except (ThumbnailError, UnsupportedFileError) as failed:
        reason = failed.message if isinstance(failed, PrintcoreError) else str(failed)
        return ThumbnailRecord(ok=False, model=model.stored_name, model_sha256=model.sha256,
                               reason=reason), None
    record = ThumbnailRecord(
        ok=True, model=model.stored_name, model_sha256=model.sha256, source=made.source,
        size_mm=made.size_mm, faces=made.faces, faces_drawn=made.faces_drawn,
        seconds=made.seconds,
    )
    return record, made.png


async def ensure_thumbnail(ctx: WebContext, job: Job) -> tuple[ThumbnailRecord, Path | bytes | None]:
    """The job's record and its PNG: the stored file's path, the bytes when they could
    not be stored, or None when it failed. Makes it (once) when there is none.

    Raises NotFoundError when the job has no model file or it is missing from storage.
    """
    folder = _folder(ctx, job)
    record = stored_record(ctx, job)
    if record is None:
        # Two first requests at once both make it; the second write wins, same content.
        record, png = await _make(ctx, job)
        stored = png is None or _write(ctx, folder, THUMBNAIL_NAME, png)
        text = json.dumps(record.to_json(), indent=2, ensure_ascii=False)
        stored = _write(ctx, folder, RECORD_NAME, text.encode("utf-8")) and stored
        if not stored and png is not None:
            return record, png
    if not record.ok:
        return record, None
    return record, folder / THUMBNAIL_NAME


def _sliced_with_picture(job: Job) -> JobFile | None:
    """The newest sliced file that may carry a plate picture (a .gcode.3mf or .3mf)."""
    for file in reversed(job.sliced_files):
        if sliced_extension(file.stored_name) in (".gcode.3mf", ".3mf"):
            return file
    return None


def thumbnail_context(ctx: WebContext, job: Job) -> dict[str, Any]:
    """For ``staff/_thumbnail.html``: ``{"thumbnail": {...}}`` with

    ``url`` (the staff PNG route), ``alt`` (text for the image), ``state``
    (``"ready"``, ``"failed"``, ``"pending"``: not made yet, the image request makes it,
    ``"none"``: the job has no model), ``reason`` (why it failed), ``size_mm`` ((x, y,
    z) in mm or None), ``source`` (``"rendered"`` or the 3MF entry), ``faces``,
    ``faces_drawn``, ``sliced_url`` / ``sliced_name`` (the newest sliced 3MF's plate
    picture route and its file name, or None).
    """
    record = stored_record(ctx, job)
    original = job.original
    sliced = _sliced_with_picture(job)
    if original is None or model_extension(original.stored_name) is None:
        state = "none"
    elif record is None:
        state = "pending"
    else:
        state = "ready" if record.ok else "failed"
    name = original.original_name if original else ""
    return {"thumbnail": {
        "url": f"/staff/jobs/{job.id}/thumbnail.png",
        "alt": f"Preview of the model {name}".strip(),
        "state": state,
        "reason": record.reason if record else None,
        "size_mm": record.size_mm if record else None,
        "source": record.source if record else None,
        "faces": record.faces if record else None,
        "faces_drawn": record.faces_drawn if record else None,
        "sliced_url": f"/staff/jobs/{job.id}/sliced-preview.png" if sliced else None,
        "sliced_name": sliced.stored_name if sliced else None,
    }}


def _png(found: Path | bytes) -> Response:
    headers = {"Cache-Control": CACHE_CONTROL}
    if isinstance(found, Path):
        return FileResponse(found, media_type="image/png", headers=headers)
    return Response(found, media_type="image/png", headers=headers)


def thumbnail_routes(ctx: WebContext) -> list[Route]:
    """The three routes, with their full paths (mount them before ``Mount("/api/v1")``)."""
    svc = ctx.requests

    async def api_thumbnail(request: Request) -> Response:
        try:
            workstation(request, ctx, api=True)
            job = svc.get(int(request.path_params["job_id"]))
            record, found = await ensure_thumbnail(ctx, job)
        except PrintcoreError as err:
            return error_json(err)
        if found is None:
            return plain_error("no_thumbnail", f"No preview for job {job.id}: {record.reason}",
                               404)
        return _png(found)

    def login_redirect(request: Request) -> Response:
        return RedirectResponse(f"/staff/login?next={request.url.path}", status_code=303)

    async def staff_thumbnail(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        try:
            job = svc.get(int(request.path_params["job_id"]))
            record, found = await ensure_thumbnail(ctx, job)
        except NotFoundError as err:
            return PlainTextResponse(err.message, status_code=404)
        if found is None:
            return PlainTextResponse(f"No preview: {record.reason}", status_code=404)
        return _png(found)

    async def sliced_preview(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        try:
            job = svc.get(int(request.path_params["job_id"]))
            sliced = _sliced_with_picture(job)
            if sliced is None:
                raise NotFoundError(f"Job {job.id} has no sliced 3MF file.")
            path = ctx.files.path_of(job, sliced.stored_name)
            picture = await ctx.inspector.plate_image(path)
        except NotFoundError as err:
            return PlainTextResponse(err.message, status_code=404)
        except (ThumbnailError, UnsupportedFileError) as err:
            return PlainTextResponse(f"No preview: {err}", status_code=404)
        if picture is None:
            return PlainTextResponse(f"No preview: {sliced.stored_name} holds no plate picture.",
                                     status_code=404)
        return Response(picture, media_type="image/png", headers={"Cache-Control": CACHE_CONTROL})

    return [
        Route("/api/v1/jobs/{job_id:id}/thumbnail", api_thumbnail),
        Route("/staff/jobs/{job_id:id}/thumbnail.png", staff_thumbnail),
        Route("/staff/jobs/{job_id:id}/sliced-preview.png", sliced_preview),
    ]
