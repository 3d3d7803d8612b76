"""The web entry point's one check of what comes in, before any route sees it.

``InputGuard`` (ASGI middleware, inside the session middleware) refuses:

* a request body over ``max_body_bytes`` (1 MiB) that is not a file upload — checked from
  ``Content-Length`` before reading, and again while reading a chunked body → **413**;
* a query parameter, JSON string (at any depth, keys too), urlencoded or multipart form
  field or file name that is not valid UTF-8 text, or that holds a control character
  (:mod:`printcore.text`) → **422** ``invalid_text`` naming the field (``reasons[0]``,
  ``job.notes``);
* a JSON integer outside the signed 64-bit range, or ``NaN`` / ``Infinity`` → **422**;
* a path holding a control character → **404**.

File uploads (``POST /submit``, ``/api/v1/submissions``, ``/staff/jobs/{id}/files``,
``/api/v1/jobs/{id}/files``) are streamed to disk by :mod:`adapters.web.uploads`, which
applies the same text rule to their fields and file names; the guard lets their bodies
through unread. A refused request reaches no route, so nothing is stored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.web.responses import error_json
from printcore.errors import InvalidTextError, NotFoundError, PrintcoreError
from printcore.text import is_multiline, text_problem

__all__ = ["MAX_BODY_BYTES", "BodyTooLargeError", "InputGuard", "check_form_bytes"]

MAX_BODY_BYTES = 1 << 20
INT64 = 2**63
MAX_JSON_DEPTH = 32

UPLOAD_PATHS = re.compile(
    r"^/(submit|api/v1/submissions|staff/jobs/[0-9]+/files|api/v1/jobs/[0-9]+/files)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

HtmlError = Callable[[Request, PrintcoreError, int], Response]


class BodyTooLargeError(PrintcoreError):
    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The request body is larger than {limit // 1024} KiB; send less (files go to "
            "the upload forms, which take up to the upload limit).")


def _refuse(fields: dict[str, str]) -> InvalidTextError:
    first = next(iter(fields))
    return InvalidTextError(f"{first}: {fields[first]}", fields)


def _decode_strict(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _check_pairs(pairs: list[tuple[bytes, bytes]], problems: dict[str, str]) -> None:
    for raw_name, raw_value in pairs:
        name = _decode_strict(raw_name)
        if name is None or text_problem(name) is not None:
            problems[raw_name.decode("utf-8", "replace")] = (
                "This parameter's name is not valid text.")
            continue
        value = _decode_strict(raw_value)
        if value is None:
            problems[name] = ("This text is not valid UTF-8; type or paste it again "
                              "(send forms as UTF-8).")
            continue
        problem = text_problem(value, is_multiline(name))
        if problem is not None:
            problems[name] = problem


def _urlencoded_pairs(raw: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append((unquote_to_bytes(name.replace(b"+", b" ")),
                      unquote_to_bytes(value.replace(b"+", b" "))))
    return pairs


def check_json(value: Any, name: str, problems: dict[str, str], depth: int = 0) -> None:
    """Collects into ``problems`` every text, integer and float in ``value`` that printcore
    refuses, by field name (``a.b``, ``a[0]``)."""
    if depth > MAX_JSON_DEPTH:
        problems[name or "body"] = f"Nested more than {MAX_JSON_DEPTH} levels deep."
    elif isinstance(value, str):
        problem = text_problem(value, is_multiline(name))
        if problem is not None:
            problems[name or "body"] = problem
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -INT64 < value < INT64:
            problems[name or "body"] = "This number is too large; use a whole number below 2^63."
    elif isinstance(value, float):
        if not math.isfinite(value):
            problems[name or "body"] = "Must be a finite number."
    elif isinstance(value, dict):
        for key, item in value.items():
            if text_problem(key) is not None:
                problems[name or "body"] = "A key here is not valid text."
                continue
            check_json(item, f"{name}.{key}" if name else key, problems, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{name}[{index}]", problems, depth + 1)


def check_form_bytes(content_type: str, body: bytes, problems: dict[str, str]) -> None:
    """Checks a buffered multipart body's field values and file names (not file data)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        return  # the route's own parser answers a malformed body
    state: dict[str, Any] = {"headers": [], "name": b"", "value": b"", "disp": b"",
                             "data": bytearray(), "file": False, "pairs": []}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        if state["name"].lower() == b"content-disposition":
            state["disp"] = state["value"]
        state["name"], state["value"] = b"", b""

    def on_part_begin() -> None:
        state["disp"], state["data"], state["file"] = b"", bytearray(), False

    def on_headers_finished() -> None:
        _, options = parse_options_header(state["disp"])
        state["field"] = options.get(b"name", b"")
        state["file"] = b"filename" in options
        if state["file"]:
            state["pairs"].append((state["field"] + b" (file name)", options[b"filename"]))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if not state["file"]:
            state["data"] += data[start:end]

    def on_part_end() -> None:
        if not state["file"]:
            state["pairs"].append((state["field"], bytes(state["data"])))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished})
    try:
        parser.write(body)
        parser.finalize()
    except Exception:
        return  # malformed: the route's parser answers it
    _check_pairs(state["pairs"], problems)


class InputGuard:
    def __init__(self, app: ASGIApp, html_error: HtmlError,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.html_error = html_error
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if _CONTROL.search(path):
            await self._answer(scope, receive, send, NotFoundError("There is no such page."),
                               404)
            return
        problems: dict[str, str] = {}
        query: bytes = scope.get("query_string", b"")
        if query:
            _check_pairs(_urlencoded_pairs(query), problems)
        if problems:
            await self._answer(scope, receive, send, _refuse(problems), 422)
            return

        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        content_type = headers.get("content-type", "")
        media = content_type.split(";", 1)[0].strip().lower()
        method = scope.get("method", "GET")
        if method == "POST" and media == "multipart/form-data" and UPLOAD_PATHS.match(path):
            await self.app(scope, receive, send)  # streamed and checked by uploads.py
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            await self._answer(scope, receive, send, BodyTooLargeError(self.max_body_bytes), 413)
            return
        if method in ("GET", "HEAD", "OPTIONS") and not length.strip("0") and \
                "transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return

        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await self._answer(scope, receive, send,
                                   BodyTooLargeError(self.max_body_bytes), 413)
                return
        raw = bytes(body)
        if raw:
            if media == "application/x-www-form-urlencoded":
                _check_pairs(_urlencoded_pairs(raw), problems)
            elif media == "multipart/form-data":
                check_form_bytes(content_type, raw, problems)
            elif path.startswith("/api/") or media.endswith("json"):
                text = _decode_strict(raw)
                if text is None:
                    problems["body"] = "The body is not valid UTF-8; send JSON as UTF-8."
                else:
                    try:
                        parsed = json.loads(text)
                    except RecursionError:
                        problems["body"] = f"Nested more than {MAX_JSON_DEPTH} levels deep."
                    except ValueError:
                        parsed = None  # the route answers "not valid JSON"
                    else:
                        check_json(parsed, "", problems)
        if problems:
            await self._answer(scope, receive, send, _refuse(problems), 422)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send,
                      error: PrintcoreError, status: int) -> None:
        request = Request(scope, receive)
        if scope["path"].startswith("/api/"):
            response: Response = error_json(error, status)
        else:
            response = self.html_error(request, error, status)
        await response(scope, receive, send)
