"""Streaming ``multipart/form-data`` straight into the staging folder.

Starlette's own form parser spools files through a temporary file and a thread pool;
here the one file part is written chunk by chunk into ``StagingArea`` as it arrives,
hashed on the way, and cut off at the size limit, so a 200 MB model never sits in memory
and is never copied twice. The parser is python-multipart's ``MultipartParser``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import attrs
from python_multipart.multipart import MultipartParser, parse_options_header

from adapters.files.staging import StagedUpload, StagingArea, UploadTooLarge
from printcore.errors import FileTooLargeError, InvalidTextError, PrintcoreError, ValidationError
from printcore.text import displayable, is_multiline, text_problem

__all__ = ["ReceivedForm", "ReceivedFile", "receive_form"]

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 50


@attrs.define
class ReceivedFile:
    """A file part now on disk in the staging folder. ``original_name`` is only a label."""

    field: str
    original_name: str
    staged: StagedUpload
    sha256: str = ""

    def discard(self) -> None:
        self.staged.abort()


@attrs.define
class ReceivedForm:
    fields: dict[str, list[str]] = attrs.Factory(dict)
    files: list[ReceivedFile] = attrs.Factory(list)
    #: Fields refused by the text rule (field → message); their values are kept with
    #: U+FFFD in place of what could not be decoded, for showing the form again.
    problems: dict[str, str] = attrs.Factory(dict)

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[-1] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def file(self, name: str) -> ReceivedFile | None:
        return next((f for f in self.files if f.field == name), None)

    def discard_files(self) -> None:
        for f in self.files:
            f.discard()


def _decode(data: bytes, field: str, problems: dict[str, str],
            multiline: bool | None = None) -> str:
    """A field's bytes as text: UTF-8 (what our pages send, whatever ``charset`` a client
    claims), with the text rule of :mod:`printcore.text`. A refused text is recorded in
    ``problems`` under ``field`` and returned with U+FFFD for the bytes it could not use."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        problems[field] = ("This text is not valid UTF-8; type or paste it again (send "
                           "forms as UTF-8).")
        return data.decode("utf-8", "replace")
    problem = text_problem(text, is_multiline(field) if multiline is None else multiline)
    if problem is not None:
        problems[field] = problem
        return "".join(ch if ch.isprintable() or ch in "\n\t" else "\ufffd"
                       for ch in displayable(text))
    return text


class _Collector:
    def __init__(self, staging: StagingArea, limit_bytes: int, file_fields: set[str],
                 before_file: Callable[[ReceivedForm], None] | None = None) -> None:
        self.staging = staging
        self.limit_bytes = limit_bytes
        self.file_fields = file_fields
        self.before_file = before_file
        self.form = ReceivedForm()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._data = bytearray()
        self._file: ReceivedFile | None = None
        self._skip = False

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._data = bytearray()
        self._file = None
        self._skip = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise ValidationError("Malformed upload: a form part has no name.")
        problems = self.form.problems
        self._name = _decode(options[b"name"], "field name", problems, multiline=False)
        if b"filename" in options:
            if self._name not in self.file_fields or self.form.file(self._name) is not None:
                self._skip = True  # unexpected or repeated file part: ignored, not stored
                return
            original = _decode(options[b"filename"], self._name, problems, multiline=False)
            if self.before_file is not None:
                self.before_file(self.form)  # e.g. the CSRF check, before a byte is kept
                self.before_file = None
            self._file = ReceivedFile(self._name, original, self.staging.open(self.limit_bytes))
            self.form.files.append(self._file)
        elif sum(len(v) for v in self.form.fields.values()) >= MAX_FIELDS:
            raise ValidationError("Too many form fields.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._skip:
            return
        if self._file is not None:
            self._file.staged.write(data[start:end])
        else:
            self._data += data[start:end]
            if len(self._data) > MAX_FIELD_BYTES:
                raise ValidationError(
                    f"The field {self._name!r} is too long.", {self._name: "This is too long."}
                )

    def on_part_end(self) -> None:
        if self._skip:
            return
        if self._file is not None:
            self._file.sha256 = self._file.staged.finish()
        else:
            self.form.fields.setdefault(self._name, []).append(
                _decode(bytes(self._data), self._name, self.form.problems))


async def receive_form(
    content_type: str,
    stream: AsyncIterator[bytes],
    staging: StagingArea,
    limit_bytes: int,
    file_fields: set[str],
    content_length: int | None = None,
    before_file: Callable[[ReceivedForm], None] | None = None,
    keep_problems: bool = False,
) -> ReceivedForm:
    """Parse a multipart body from ``stream``; file parts named in ``file_fields`` go to disk.

    ``before_file`` is called with the fields read so far when the first file part
    begins (and at the end when there is none); what it raises ends the request before a
    byte of the file is stored (the CSRF check of the HTML forms).

    Raises FileTooLargeError (partial file removed) past ``limit_bytes`` for one file,
    InvalidTextError for a field or file name that is not UTF-8 text or holds control
    characters (unless ``keep_problems``: then they are in ``ReceivedForm.problems`` and
    the caller answers), ValidationError for a body that is not multipart/form-data or is
    malformed, and whatever ``before_file`` raises. On any error every staged file of this
    request is removed.
    """
    media, params = parse_options_header(content_type)
    if media != b"multipart/form-data" or b"boundary" not in params:
        raise ValidationError(
            "Send the form as multipart/form-data with the file in the 'file' field.",
            {"file": "Attach a file."},
        )
    if content_length is not None and content_length > limit_bytes + MAX_FIELD_BYTES * MAX_FIELDS:
        raise FileTooLargeError(limit_bytes)  # refused before reading a byte
    collector = _Collector(staging, limit_bytes, file_fields, before_file)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": collector.on_part_begin,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
        },
    )
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except UploadTooLarge as err:
        collector.form.discard_files()
        raise FileTooLargeError(err.limit_bytes) from None
    except PrintcoreError:
        collector.form.discard_files()
        raise
    except Exception as err:  # python-multipart's parse errors, a dropped connection
        collector.form.discard_files()
        raise ValidationError(f"The upload could not be read ({err}); try again.") from err
    except BaseException:
        collector.form.discard_files()
        raise
    if collector.before_file is not None:  # no file part at all
        try:
            collector.before_file(collector.form)
        except BaseException:
            collector.form.discard_files()
            raise
    for received in collector.form.files:
        if not received.sha256:  # part never ended: truncated body
            collector.form.discard_files()
            raise ValidationError("The upload was cut off; try again.", {"file": "Upload again."})
    problems = collector.form.problems
    if problems and not keep_problems:
        collector.form.discard_files()
        first = next(iter(problems))
        raise InvalidTextError(f"{first}: {problems[first]}", problems)
    return collector.form
