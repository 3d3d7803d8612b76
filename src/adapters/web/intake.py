"""Receiving print requests and sliced files over HTTP (shared by the HTML form and the API).

Order of checks: stream the body to the staging folder (size cap) → form fields
(printcore's checks plus a real, offline email check with email-validator) → the file's
extension → its content, parsed in the inspector process. Whatever is refused, every
staged byte is removed before the answer goes out.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from email_validator import EmailNotValidError, validate_email
from starlette.requests import Request

from adapters.meshes import MODEL_EXTENSIONS, SLICED_EXTENSIONS, model_extension, sliced_extension
from adapters.web.context import WebContext
from adapters.web.uploads import ReceivedFile, ReceivedForm, receive_form
from printcore.errors import (
    InvalidTextError,
    PrintcoreError,
    UnsupportedFileError,
    ValidationError,
)
from printcore.requests.job import Submission
from printcore.requests.ports import StagedFile
from printcore.requests.validation import FIELD_LIMITS, check_submission
from printcore.slicing import SliceEstimate

__all__ = ["FormRejected", "receive_sliced_file", "receive_submission", "SUBMISSION_FIELDS"]

SUBMISSION_FIELDS = tuple(FIELD_LIMITS)


@attrs.define
class FormRejected(Exception):
    """The submission was refused: ``error`` says why, ``values`` is what was typed."""

    error: PrintcoreError
    values: dict[str, str]


def _clean(value: str) -> str:
    return value.strip()


def check_email(address: str) -> str:
    """The normalised address; raises ValidationError on the ``email`` field. No DNS lookups."""
    try:
        return str(validate_email(address, check_deliverability=False).normalized)
    except EmailNotValidError:
        raise ValidationError(
            "Please correct the marked fields.",
            {"email": "Enter a valid email address, like name@university.edu."},
        ) from None


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length", "")
    return int(raw) if raw.isdigit() else None


def _staged(received: ReceivedFile, extension: str) -> StagedFile:
    return StagedFile(
        path=received.staged.path,
        original_name=received.original_name[:255],
        extension=extension,
        size_bytes=received.staged.size_bytes,
        sha256=received.sha256,
    )


BeforeFile = Callable[[ReceivedForm], None]


async def receive_submission(
    ctx: WebContext, request: Request, before_file: BeforeFile | None = None,
) -> tuple[Submission, StagedFile]:
    """Raises FormRejected (with the typed values) or FileTooLargeError / ValidationError
    when the body itself cannot be read; ``before_file`` as in ``receive_form``. Raises
    BusyError before reading the body when too many uploads wait to be checked."""
    ctx.inspector.check_room()
    form = await receive_form(
        request.headers.get("content-type", ""),
        request.stream(),
        ctx.staging,
        ctx.max_upload_bytes,
        {"file"},
        _content_length(request),
        before_file=before_file,
        keep_problems=True,
    )
    values = {name: _clean(form.get(name)) for name in SUBMISSION_FIELDS}
    values["print_method"] = values["print_method"].lower()
    fields: dict[str, str] = {}
    submission = Submission(**values)
    try:
        check_submission(submission)
    except ValidationError as err:
        fields.update(err.fields)
    fields.update(form.problems)  # the text rule's answer wins for those fields
    if form.problems:
        form.discard_files()
        raise FormRejected(InvalidTextError("Please correct the marked fields.", fields),
                           values)
    if "email" not in fields:
        try:
            values["email"] = check_email(values["email"])
            submission = attrs.evolve(submission, email=values["email"])
        except ValidationError as err:
            fields.update(err.fields)
    received = form.file("file")
    file_error: UnsupportedFileError | None = None
    staged: StagedFile | None = None
    if received is None or (received.staged.size_bytes == 0 and not received.original_name):
        fields["file"] = "Attach your model: an .stl, .obj or .3mf file."
    else:
        extension = model_extension(received.original_name)
        if extension is None:
            file_error = UnsupportedFileError(
                "Only .stl, .obj and .3mf files are accepted; export your model in one of "
                "these formats."
            )
        elif not fields:
            try:
                await ctx.inspector.model(received.staged.path, extension)
                staged = _staged(received, extension)
            except UnsupportedFileError as err:
                file_error = err
    if file_error is not None:
        form.discard_files()
        file_error.fields.update(fields)
        raise FormRejected(file_error, values)
    if fields or staged is None:
        form.discard_files()
        raise FormRejected(ValidationError("Please correct the marked fields.", fields), values)
    return submission, staged


async def receive_sliced_file(
    ctx: WebContext, request: Request, before_file: BeforeFile | None = None,
) -> tuple[StagedFile, SliceEstimate, dict[str, str]]:
    """A staff-made sliced file (.gcode.3mf, .3mf, .gcode) and what its slicer says.

    Returns the staged file, the estimate and the other form fields. Raises
    UnsupportedFileError, FileTooLargeError, ValidationError (nothing kept), and BusyError
    before reading the body when too many uploads wait to be checked.
    """
    ctx.inspector.check_room()
    form = await receive_form(
        request.headers.get("content-type", ""),
        request.stream(),
        ctx.staging,
        ctx.max_upload_bytes,
        {"file"},
        _content_length(request),
        before_file=before_file,
    )
    fields = {name: form.get(name) for name in form.fields}
    received = form.file("file")
    if received is None or received.staged.size_bytes == 0:
        form.discard_files()
        raise ValidationError("Attach the sliced file.", {"file": "Attach the sliced file."})
    extension = sliced_extension(received.original_name)
    if extension is None:
        form.discard_files()
        raise UnsupportedFileError(
            "A sliced file ends in " + ", ".join(SLICED_EXTENSIONS) + "; export the plate "
            "from your slicer (e.g. Bambu Studio: File > Export > Export plate sliced file)."
        )
    try:
        estimate = await ctx.inspector.sliced(received.staged.path, extension)
    except UnsupportedFileError:
        form.discard_files()
        raise
    return _staged(received, extension), estimate, fields


def accepted_model_extensions() -> str:
    """For the file input's ``accept`` attribute."""
    return ",".join(MODEL_EXTENSIONS)
