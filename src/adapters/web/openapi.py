"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json``).

It is meant to be exact, so that a schema-driven fuzzer (Schemathesis, in
``tests/e2e/test_schemathesis.py``) finds no answer it does not describe:

* every operation declares its ``security``: ``[]`` for the public ones (health, this
  document, submissions, login, confirm, slicer/opened), bearer token or session cookie
  for the staff ones, which answer 401 without them (and 403 for a cookie call of an
  unsafe method without the ``X-CSRF-Token`` header);
* every operation lists each status it can answer, all errors with the ``Error`` schema.
  Common to all: **422** ``invalid_text`` for a text (JSON string at any depth, form field,
  file name, query parameter) that is not UTF-8-encodable or holds a control character
  (newline and tab only in multi-line fields: notes, reason, custom_reason), and for JSON
  integers beyond ±(2^63−1) or NaN/Infinity; **413** ``body_too_large`` for a request
  body over 1 MiB that is not a file upload;
* path ids are ``[0-9]{1,18}``: anything else does not match the route (404);
* request bodies say which fields are required, their types, lengths and ranges; response
  bodies give every field of jobs, events, files, messages, printers and tickets.
"""

from __future__ import annotations

from typing import Any

from adapters.web.analytics_openapi import analytics_paths
from adapters.web.audit_openapi import audit_paths
from adapters.web.health_openapi import health_paths
from adapters.web.numbers import MAX_ID as ID_LIMIT
from printcore.requests.lifecycle import MAX_OVERRIDE_REASON, MAX_QUOTE_CENTS, OVERRIDES
from printcore.requests.locks import LOCK_ACTIONS

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_STAFF_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": []}]
_PUBLIC: list[dict[str, list[str]]] = []

#: One-line text: no control character (Unicode Cc), so no newline or tab either.
LINE = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
#: Multi-line text (notes, reasons): newline, carriage return and tab allowed.
LINES = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
#: The largest id a route matches (2^31 − 1, the id columns' range); larger answers 404.
MAX_ID = ID_LIMIT
INT64_MAX = 2**63 - 1

_ERROR_TEXT = {
    400: "The confirmation link cannot be used (tampered, used or expired): "
         "`bad_token`, `token_tampered`, `token_used`, `token_expired`",
    401: "Not logged in, or the session / bearer token ended (`unauthenticated`); for "
         "POST /auth/login a wrong password; for POST /slicer/opened a refused link "
         "(`link_refused`)",
    403: "Session-cookie call of an unsafe method without a matching X-CSRF-Token header "
         "(`csrf_failed`)",
    404: "No such job, message, ticket or printer (`not_found`)",
    409: "Not allowed in the job's (or printer's, ticket's) state, with `state`; or changed "
         "by someone else since the `version` you sent (`invalid_transition`, "
         "`concurrent_change`, `already_reported`)",
    413: "Request body over 1 MiB (`body_too_large`), or an uploaded file over the upload "
         "limit (`file_too_large`)",
    415: "Not a model / sliced file printcore can read (`unsupported_file`)",
    422: "Invalid input, with `fields` naming each bad field: `validation_error`, "
         "`invalid_text` (not UTF-8-encodable text or a control character), numbers out "
         "of range, a body that is not a JSON object",
    429: "Too many attempts (`rate_limited`); `retry_after` and the Retry-After header say "
         "in how many seconds to try again",
    503: "Not available on this server now (`storage_error`, `opener_not_configured`, the "
         "self-service queue not set up; `busy`: too many uploads waiting to be checked, "
         "refused before the body is read); `retry_after` and the Retry-After header say "
         "in how many seconds to try again",
}


def _errors(*codes: int) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for code in codes:
        answer: dict[str, Any] = {"description": _ERROR_TEXT[code],
                                  "content": {"application/json": {"schema": _ERROR}}}
        if code == 429:
            answer["headers"] = {"Retry-After": {
                "description": "Seconds until the next attempt can succeed",
                "required": True, "schema": {"type": "integer", "minimum": 1}}}
        answers[str(code)] = answer
    return answers


def _ok(status: int, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {str(status): {"description": description,
                          "content": {"application/json": {"schema": schema}}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(max_length: int, *, min_length: int = 0, multiline: bool = False,
          description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length,
                              "pattern": LINES if multiline else LINE}
    if min_length:
        schema["minLength"] = min_length
    if description:
        schema["description"] = description
    return schema


def _object(properties: dict[str, Any], required: list[str] | None = None,
            description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": list(properties) if required is None else required}
    if description:
        schema["description"] = description
    return schema


def _json_body(properties: dict[str, Any], required: list[str], *,
               body_required: bool = True) -> dict[str, Any]:
    return {
        "required": body_required,
        "content": {"application/json": {"schema": {
            "type": "object", "properties": properties, "required": required}}},
    }


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


_DATETIME = {"type": "string", "format": "date-time"}
_DATETIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_STAFF_NAME = _text(80, min_length=1, description="An active staff member's name")
_VERSION = {"type": "integer", "minimum": 0, "maximum": INT64_MAX,
            "description": "The job version you saw (optional; a changed job answers 409)"}
_STAFF = {"staff_name": _STAFF_NAME, "version": _VERSION}
_REASON = {**_STAFF, "reason": _text(1000, multiline=True)}
_JOB_RESPONSE = _ok(200, "The job after the change", _ref("Job"))
_JOB_STATUSES = ["uploaded", "pending", "rejected", "ready_to_print", "printing", "completed",
                 "paid_picked_up", "deleted"]
_GRAMS = {"type": "number", "exclusiveMinimum": 0, "maximum": 100_000}


def _action(summary: str, body: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "security": _STAFF_SECURITY,
        "parameters": [_path_id("job_id")],
        "requestBody": _json_body(body, required),
        "responses": {**_JOB_RESPONSE, **_errors(401, 403, 404, 409, 413, 422, 503)},
    }}


_QUEUE_RESPONSE = _ok(200, "message (what happened) and queue (as GET /queue)",
                      _object({"message": {"type": "string"}, "queue": _ref("Queue")}))
_QUEUE_STAFF = {"staff_name": _STAFF_NAME,
                "version": {"type": "integer", "minimum": 0, "maximum": INT64_MAX,
                            "description": "The printer's version you saw (optional; a "
                                           "changed printer answers 409)"}}
_PRINTER_NAME = {"name": "name", "in": "path", "required": True,
                 "schema": {"type": "string", "minLength": 1, "maxLength": 120,
                            "pattern": "^[^/\\u0000-\\u001f\\u007f-\\u009f]+$"}}


def _printer_action(summary: str) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "security": _STAFF_SECURITY,
        "parameters": [_PRINTER_NAME],
        "requestBody": _json_body(_QUEUE_STAFF, ["staff_name"]),
        "responses": {**_QUEUE_RESPONSE, **_errors(401, 403, 404, 409, 413, 422, 503)},
    }}


def _queue_paths() -> dict[str, Any]:
    return {
        "/queue": {"get": {
            "summary": "Self-service printers, the queue with positions and ETAs, recent "
                       "closed prints, access hours and whether the lab is open",
            "security": _STAFF_SECURITY,
            "responses": {**_ok(200, "the queue", _ref("Queue")),
                          **_errors(401, 422, 503)}}},
        "/queue/tickets/{ticket_id}": {"delete": {
            "summary": "Staff: remove a ticket from the queue",
            "description": "staff_name in the JSON body or, for clients that send no body "
                           "with DELETE, as a query parameter.",
            "security": _STAFF_SECURITY,
            "parameters": [_path_id("ticket_id"),
                           {"name": "staff_name", "in": "query", "required": False,
                            "schema": _STAFF_NAME}],
            "requestBody": _json_body(_QUEUE_STAFF, [], body_required=False),
            "responses": {**_QUEUE_RESPONSE, **_errors(401, 403, 404, 409, 413, 422, 503)}}},
        "/printers/{name}/release": _printer_action(
            "Staff: free a printer (its holder goes back to the queue head, or a forgotten "
            "print is closed as finished)"),
        "/printers/{name}/out-of-service": _printer_action("Staff: take a printer out of service"),
        "/printers/{name}/back-in-service": _printer_action("Staff: put a printer back in service"),
    }


_ACTOR = _object({"kind": {"type": "string", "enum": ["staff", "student", "member", "system"]},
                  "name": {"type": "string"}, "workstation": {"type": ["string", "null"]}},
                 description="Who did it")
_ESTIMATE = _object({"seconds": {"type": ["integer", "null"]},
                     "grams": {"type": ["number", "null"]},
                     "slicer": {"type": ["string", "null"]}, "source": {"type": "string"}},
                    description="What the slicer wrote into a sliced file (null: unknown)")
_JOB_FILE = _object({
    "stored_name": {"type": "string"}, "original_name": {"type": "string"},
    "role": {"type": "string", "enum": ["original", "sliced"]},
    "size_bytes": {"type": "integer", "minimum": 0},
    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "uploaded_at": _DATETIME,
    "estimate": {"oneOf": [{"type": "null"}, _ref("SliceEstimate")]}})
_PAYMENT = _object({
    "grams": {"type": "number"}, "amount_cents": {"type": "integer"},
    "txn_no": {"type": "string"}, "picked_up_by": {"type": "string"},
    "recorded_by": {"type": "string"}, "recorded_at": _DATETIME,
    "voided_at": _DATETIME_OR_NULL, "void_reason": {"type": ["string", "null"]},
    "quoted_cents": {"type": ["integer", "null"],
                     "description": "The cost the student confirmed (null: older payment)"},
    "override_reason": {"type": ["string", "null"],
                        "description": "Why more than the quote was charged (null: not)"}},
    required=["grams", "amount_cents", "txn_no", "picked_up_by", "recorded_by",
              "recorded_at", "voided_at", "void_reason"])
_EVENT = _object({
    "id": {"type": ["integer", "null"]}, "subject": {"type": "string"},
    "subject_id": {"type": "integer"}, "kind": {"type": "string"},
    "actor": _ref("Actor"), "at": _DATETIME,
    "details": {"type": "object"},
    "from_status": {"type": ["string", "null"]}, "to_status": {"type": ["string", "null"]}})
_LOCK = _object({
    "job_id": {"type": "integer"}, "staff_name": {"type": "string"},
    "workstation": {"type": "string", "description": "The holder's login workstation"},
    "action": {"type": "string", "enum": list(LOCK_ACTIONS)},
    "doing": {"type": "string", "description": "The verb, e.g. `approving`"},
    "message": {"type": "string", "description": (
        "`Ana at Front desk is approving this job (until 16:42 UTC)`")},
    "taken_at": _DATETIME, "expires_at": _DATETIME,
    "expires_in_seconds": {"type": "integer", "minimum": 0}},
    required=["job_id", "staff_name", "workstation", "action", "doing", "message",
              "taken_at", "expires_at"],
    description="A job's live soft lock: advice for the other workstation, not a guard "
                "(the version check still is)")
_JOB = _object({
    "id": {"type": "integer"},
    "status": {"type": "string", "enum": _JOB_STATUSES},
    "version": {"type": "integer", "minimum": 0},
    "student_name": {"type": "string"}, "email": {"type": "string"},
    "discipline": {"type": "string"}, "class_number": {"type": "string"},
    "print_method": {"type": "string", "enum": ["filament", "resin"]},
    "color": {"type": "string"}, "preferred_printer": {"type": "string"},
    "notes": {"type": "string"},
    "created_at": _DATETIME, "updated_at": _DATETIME_OR_NULL,
    "files": {"type": "array", "items": _ref("JobFile")},
    "authoritative_file": {"type": ["string", "null"]},
    "weight_g": {"type": ["number", "null"]}, "time_hours": {"type": ["number", "null"]},
    "cost_cents": {"type": ["integer", "null"]},
    "rejection_reasons": {"type": "array", "items": {"type": "string"}},
    "confirmation_expires_at": _DATETIME_OR_NULL,
    "confirmed_at": {**_DATETIME_OR_NULL,
                     "description": "When the student (or staff) confirmed; the print "
                                    "line's order"},
    "reminder_sent_at": {**_DATETIME_OR_NULL,
                         "description": "When the last reminder that the confirmation "
                                        "link expires soon was emailed"},
    "printer": {"type": ["string", "null"]},
    "failed_attempts": {"type": "integer", "minimum": 0},
    "payments": {"type": "array", "items": _ref("Payment")},
    "reviewed_at": {**_DATETIME_OR_NULL,
                    "description": "When a staff member marked the job reviewed (null: "
                                   "not reviewed, shown as NEW)"},
    "reviewed_by": {"type": ["string", "null"],
                    "description": "Who marked it reviewed (`before upgrade` for jobs "
                                   "older than the review feature)"},
    "staff_notes": {"type": "string", "maxLength": 2000,
                    "description": "Staff notes (multi-line; never shown to the student)"},
    "staff_notes_by": {"type": ["string", "null"],
                       "description": "Who last changed the staff notes"},
    "staff_notes_at": {**_DATETIME_OR_NULL,
                       "description": "When the staff notes last changed (UTC)"},
    "allowed_actions": {"type": "array", "items": {"type": "string"},
                        "description": "The events allowed in the job's state"},
    "allowed_overrides": {"type": "array", "items": {"type": "string", "enum": list(OVERRIDES)},
                          "description": "The staff overrides allowed in the job's state, "
                                         "each needing a reason: those of allowed_actions, "
                                         "plus `requote` while pending"},
    "lock": {"oneOf": [{"type": "null"}, _ref("Lock")],
             "description": "Who is at this job now (null: nobody, or the lock expired)"},
    "amount_due_cents": {"type": ["integer", "null"], "minimum": 0,
                         "description": "Null before approval; the confirmed quote until "
                                        "pickup; after pickup what was charged"},
    "events": {"type": "array", "items": _ref("Event"),
               "description": "The job's history (GET /jobs/{job_id} only)"}},
    required=["id", "status", "version", "student_name", "email", "discipline",
              "class_number", "print_method", "color", "preferred_printer", "notes",
              "created_at", "updated_at", "files", "authoritative_file", "weight_g",
              "time_hours", "cost_cents", "rejection_reasons", "confirmation_expires_at",
              "confirmed_at", "reminder_sent_at",
              "printer", "failed_attempts", "payments", "reviewed_at", "reviewed_by",
              "allowed_actions", "amount_due_cents"])
_MESSAGE = _object({
    "id": {"type": "integer"}, "channel": {"type": "string", "enum": ["email", "discord"]},
    "kind": {"type": "string"}, "recipient": {"type": "string"},
    "subject": {"type": "string"}, "subject_id": {"type": "integer"},
    "status": {"type": "string", "enum": ["pending", "sent", "failed"]},
    "attempts": {"type": "integer", "minimum": 0},
    "created_at": _DATETIME, "next_attempt_at": _DATETIME_OR_NULL,
    "sent_at": _DATETIME_OR_NULL, "last_error": {"type": ["string", "null"]}},
    description="An outbox row: next_attempt_at only while pending")
_PRINTER = _object({
    "id": {"type": ["integer", "null"]}, "name": {"type": "string"},
    "label": {"type": "string"},
    "status": {"type": "string", "enum": ["idle", "offered", "claimed", "printing",
                                          "out_of_service"]},
    "version": {"type": "integer"},
    "holder_ticket": {"type": ["integer", "null"]}, "holder": {"type": ["string", "null"]},
    "claim_deadline": _DATETIME_OR_NULL, "start_deadline": _DATETIME_OR_NULL,
    "print_ticket": {"type": ["integer", "null"]},
    "print_member": {"type": ["string", "null"]},
    "started_at": _DATETIME_OR_NULL, "predicted_end": _DATETIME_OR_NULL,
    "offer_not_before": _DATETIME_OR_NULL,
    "holder_name": {"type": ["string", "null"]},
    "print_member_name": {"type": ["string", "null"]}},
    required=["name", "label", "status", "version", "holder_name", "print_member_name"])
_TICKET_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer"}, "member": {"type": "string"},
    "member_name": {"type": "string"}, "job_name": {"type": "string"},
    "est_minutes": {"type": "integer"}, "created_at": _DATETIME,
    "queue_key": {"type": "number"},
    "status": {"type": "string"}, "version": {"type": "integer"},
    "printer": {"type": ["string", "null"]},
    "offered_at": _DATETIME_OR_NULL, "claimed_at": _DATETIME_OR_NULL,
    "started_at": _DATETIME_OR_NULL, "closed_at": _DATETIME_OR_NULL,
    "outcome": {"type": ["string", "null"]},
    "actual_minutes": {"type": ["integer", "null"]},
    "photo_url": {"type": ["string", "null"]}, "misses": {"type": "integer"}}
_TICKET = _object(_TICKET_PROPERTIES,
                  required=["id", "member", "member_name", "job_name", "est_minutes",
                            "status"])
_PLACED_TICKET = _object(
    {**_TICKET_PROPERTIES,
     "status": {"type": "string", "enum": ["queued", "offered", "claimed", "printing"]},
     "position": {"type": "integer", "minimum": 0,
                  "description": "1-based among queued; 0 once offered, claimed or printing"},
     "eta": _DATETIME_OR_NULL},
    required=["id", "member", "member_name", "job_name", "est_minutes", "status", "position",
              "eta"])
_QUEUE_SCHEMA = _object({
    "now": _DATETIME,
    "timezone": {"type": "string", "description": "The lab's zone, for display"},
    "access_hours": _object({
        "spec": {"type": "string"}, "open_now": {"type": "boolean"},
        "always_open": {"type": "boolean"},
        "next_change": {**_DATETIME_OR_NULL,
                        "description": "When the lab closes (open now) or opens (closed)"}}),
    "printers": {"type": "array", "items": _ref("Printer")},
    "queue": {"type": "array", "description": "Open tickets in FIFO order",
              "items": _PLACED_TICKET},
    "history": {"type": "array", "description": "Recently closed tickets",
                "items": _ref("Ticket")}})
_ERROR_SCHEMA = _object({"error": _object({
    "code": {"type": "string"}, "message": {"type": "string"},
    "fields": {"type": "object", "additionalProperties": {"type": "string"},
               "description": "Field name (`a.b`, `a[0]` for nested JSON) → what is wrong"},
    "state": {"type": "string", "description": "The state that refused (409)"},
    "retry_after": {"type": "integer", "minimum": 1,
                    "description": "Seconds until the next try can succeed (429)"}},
    required=["code", "message"])})


def _submission_fields() -> dict[str, Any]:
    limits = {"student_name": 120, "email": 254, "discipline": 120, "class_number": 60,
              "color": 60, "preferred_printer": 120}
    fields: dict[str, Any] = {name: _text(limit) for name, limit in limits.items()}
    for name in ("student_name", "email", "discipline", "color"):
        fields[name]["minLength"] = 1
    fields["notes"] = _text(2000, multiline=True)
    fields["print_method"] = {"type": "string", "enum": ["filament", "resin"]}
    fields["file"] = {"type": "string", "format": "binary",
                      "description": ".stl (binary or ASCII), .obj or .3mf"}
    return fields


def _job_paths() -> dict[str, Any]:
    return {
        "/jobs": {"get": {
            "summary": "List or search jobs",
            "description": (
                "Without a search parameter: jobs newest first, or in `status` oldest "
                "first. With any of `q`, `print_method`, `color`, `preferred_printer`, "
                "`discipline` or `sort`: a search across all states (or `status`). `q` "
                "matches, ignoring case and accents, part of the student's name, the "
                "email, or an original or stored file name; `12` or `#12` also matches "
                "job 12. `%` and `_` are literal. The filters match the whole value, "
                "ignoring case. `total` is how many jobs match (or are listed) in all; "
                "each job carries its `status`."),
            "security": _STAFF_SECURITY,
            "parameters": [
                {"name": "status", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": _JOB_STATUSES}},
                {"name": "q", "in": "query", "required": False,
                 "description": "Text to find (trimmed; at most 200 characters as sent)",
                 "schema": _text(200)},
                *({"name": name, "in": "query", "required": False,
                   "description": f"Only jobs whose {label} is this (ignoring case)",
                   "schema": _text(200)}
                  for name, label in (("print_method", "print method"), ("color", "colour"),
                                      ("preferred_printer", "preferred printer"),
                                      ("discipline", "discipline"))),
                {"name": "sort", "in": "query", "required": False,
                 "description": "`age`: oldest first; `name`: by student name, then email",
                 "schema": {"type": "string", "enum": ["age", "name"], "default": "age"}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                            "default": 100}},
                {"name": "offset", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000,
                            "default": 0}}],
            "responses": {**_ok(200, "jobs, counts per status and the total", _object({
                "jobs": {"type": "array", "items": _ref("Job")},
                "counts": {"type": "object",
                           "additionalProperties": {"type": "integer", "minimum": 0}},
                "total": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer"}, "offset": {"type": "integer"}})),
                **_errors(401, 422)}}},
        "/jobs/{job_id}": {
            "get": {"summary": "A job with its events",
                    "security": _STAFF_SECURITY,
                    "parameters": [_path_id("job_id")],
                    "responses": {**_ok(200, "The job with its events", _ref("Job")),
                                  **_errors(401, 404, 422)}},
            "delete": {"summary": "Delete an uploaded or pending job",
                       "description": "The job's row and files are removed; its events stay "
                                      "(the last one `delete`, with the reason), and GET "
                                      "answers 404 afterwards. A destructive action: the "
                                      "shared staff password is asked again "
                                      "(`confirm_password`; missing or wrong: 422 on that "
                                      "field, nothing deleted). `reason` is required (422). "
                                      "409 when the job is under way (ready to print or "
                                      "later): it cannot be deleted then. staff_name in the "
                                      "JSON body or as a query parameter.",
                       "security": _STAFF_SECURITY,
                       "parameters": [_path_id("job_id"),
                                      {"name": "staff_name", "in": "query", "required": False,
                                       "schema": _STAFF_NAME}],
                       "requestBody": _json_body({
                           **_STAFF,
                           "reason": _text(1000, min_length=1, multiline=True,
                                           description="Why the request is deleted"),
                           "confirm_password": {"type": "string", "minLength": 1,
                                                "description": "The shared staff password, "
                                                               "asked again"}},
                           ["reason", "confirm_password"]),
                       "responses": {**_ok(200, "deleted", _object({
                           "id": {"type": "integer"},
                           "status": {"type": "string", "const": "deleted"}})),
                           **_errors(401, 403, 404, 409, 413, 422, 503)}},
            "patch": {"summary": "Correct the request's details (typos)",
                      "description": "Any of the listed fields, checked as on the submission "
                                     "form; fields sent unchanged are left out, and nothing "
                                     "left to change is a 422, as is any other field name. "
                                     "`version` is required. One `edit` event with "
                                     "`{\"changes\": {field: {\"old\", \"new\"}}}`. The "
                                     "stored file names keep the old student name.",
                      "security": _STAFF_SECURITY,
                      "parameters": [_path_id("job_id")],
                      "requestBody": _json_body({
                          **_STAFF, "version": {**_VERSION, "description": (
                              "The job version you saw (required; a changed job "
                              "answers 409)")},
                          **{name: {**field, "minLength": 1} if name in (
                              "student_name", "email", "discipline", "color") else field
                             for name, field in _submission_fields().items()
                             if name not in ("notes", "print_method", "file")}},
                          ["staff_name", "version"]),
                      "responses": {**_JOB_RESPONSE,
                                    **_errors(401, 403, 404, 409, 413, 422, 503)}}},
        "/jobs/{job_id}/notes": {"patch": {
            "summary": "Replace the job's staff notes (\"\" clears them)",
            "description": "Not a state change: allowed in every state. One `notes` event "
                           "with the old and new text. 422 when the text is unchanged, "
                           "too long or holds control characters.",
            "security": _STAFF_SECURITY,
            "parameters": [_path_id("job_id")],
            "requestBody": _json_body({**_STAFF, "notes": _text(2000, multiline=True)},
                                      ["staff_name", "notes"]),
            "responses": {**_JOB_RESPONSE, **_errors(401, 403, 404, 409, 413, 422, 503)}}},
        "/jobs/{job_id}/files": {"post": {
            "summary": "Upload a sliced file; answers with the slicer's estimate",
            "security": _STAFF_SECURITY,
            "parameters": [_path_id("job_id")],
            "requestBody": {"required": True, "content": {"multipart/form-data": {
                "schema": {"type": "object", "properties": {
                    "staff_name": _STAFF_NAME,
                    "version": {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
                    "file": {"type": "string", "format": "binary",
                             "description": ".gcode.3mf, .3mf or .gcode"}},
                    "required": ["staff_name", "file"]}}}},
            "responses": {**_ok(201, "file, estimate, prefill and the job", _object({
                "file": _ref("JobFile"),
                "estimate": _object({
                    "seconds": {"type": ["integer", "null"]},
                    "hours": {"type": ["number", "null"]},
                    "grams": {"type": ["number", "null"]},
                    "slicer": {"type": ["string", "null"]}, "source": {"type": "string"}}),
                "prefill": _object({"weight_g": {"type": ["number", "null"]},
                                    "time_hours": {"type": ["number", "null"]},
                                    "cost_cents": {"type": ["integer", "null"]}}),
                "job": _ref("Job")})),
                **_errors(401, 403, 404, 409, 413, 415, 422, 503)}}},
        "/jobs/{job_id}/sliced-candidates": {"get": {
            "summary": "The sliced files the approval dialog offers, best first: those "
                       "uploaded and the slicer's saves in the job's folder not yet adopted",
            "description": "Ranked by extension (.gcode.3mf > .3mf > .gcode), then newest, "
                           "then name; the first is recommended. Files in the folder that "
                           "look like saves but are refused (links, empty, over the upload "
                           "limit, still being written, names that are not plain text) are "
                           "in `skipped` with the reason.",
            "security": _STAFF_SECURITY,
            "parameters": [_path_id("job_id")],
            "responses": {**_ok(200, "the candidates", _object({
                "job_id": {"type": "integer"}, "version": {"type": "integer"},
                "candidates": {"type": "array", "items": _object({
                    "name": {"type": "string"},
                    "choice": {"type": "string", "description": (
                        "authoritative_file's value in the approval form (`saved:` + name "
                        "for a save)")},
                    "source": {"type": "string", "enum": ["uploaded", "slicer save"]},
                    "known": {"type": "boolean"}, "extension": {"type": "string"},
                    "size_bytes": {"type": "integer"}, "at": _DATETIME,
                    "estimate": {"type": ["object", "null"]},
                    "prefill": _object({"weight_g": {"type": "number"},
                                        "time_hours": {"type": "number"}}, []),
                    "recommended": {"type": "boolean"}})},
                "recommended": {"type": ["string", "null"]},
                "skipped": {"type": "array", "items": _object({
                    "name": {"type": "string"}, "reason": {"type": "string"}})}})),
                **_errors(401, 404, 422)}}},
        "/jobs/{job_id}/sliced-candidates/adopt": {"post": {
            "summary": "Adopt one of the slicer's saves as a sliced file of the job",
            "description": "The save is checked exactly like an uploaded sliced file (size "
                           "limit, read by the inspector with its estimate), stored under a "
                           "generated name, and the slicer's file removed; one "
                           "`add_sliced_file` event with `source: \"slicer save\"`. 415 for a "
                           "file that is not a sliced file, a link, empty or still being "
                           "written; 422 (`fields.name`) for a bad name or a file no longer "
                           "in the folder.",
            "security": _STAFF_SECURITY,
            "parameters": [_path_id("job_id")],
            "requestBody": _json_body({**_STAFF, "name": _text(300, min_length=1, description=(
                "The save's file name in the job's folder (or its `choice`)"))},
                ["staff_name", "name"]),
            "responses": {**_ok(201, "file, estimate, prefill and the job", _object({
                "file": _ref("JobFile"),
                "estimate": _object({
                    "seconds": {"type": ["integer", "null"]},
                    "hours": {"type": ["number", "null"]},
                    "grams": {"type": ["number", "null"]},
                    "slicer": {"type": ["string", "null"]}, "source": {"type": "string"}}),
                "prefill": _object({"weight_g": {"type": ["number", "null"]},
                                    "time_hours": {"type": ["number", "null"]},
                                    "cost_cents": {"type": ["integer", "null"]}}),
                "job": _ref("Job")})),
                **_errors(401, 403, 404, 409, 413, 415, 422, 503)}}},
        "/jobs/{job_id}/approve": _action("Approve with weight and time", {
            **_STAFF, "weight_g": _GRAMS,
            "time_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 720},
            "authoritative_file": _text(300, min_length=1,
                                        description="stored_name of one of the job's "
                                                    "sliced files")},
            ["staff_name", "weight_g", "time_hours", "authoritative_file"]),
        "/jobs/{job_id}/reject": _action("Reject with reasons", {
            **_STAFF, "reasons": {"type": "array", "items": _text(1000, multiline=True)},
            "custom_reason": _text(1000, multiline=True)}, ["staff_name"]),
        "/jobs/{job_id}/force-confirm": _action("Confirm for the student", _REASON,
                                                ["staff_name", "reason"]),
        "/jobs/{job_id}/mark-printing": _action("Start printing", {
            **_STAFF, "printer": _text(120)}, ["staff_name"]),
        "/jobs/{job_id}/mark-failed": _action("The print failed", _REASON,
                                              ["staff_name", "reason"]),
        "/jobs/{job_id}/mark-complete": _action("Printed; email the student", _STAFF,
                                                ["staff_name"]),
        "/jobs/{job_id}/payment": _action("Record payment at pickup", {
            **_STAFF, "grams": _GRAMS, "txn_no": _text(120, min_length=1),
            "picked_up_by": _text(120, min_length=1),
            "override_reason": _text(500, description=(
                "Why more than the confirmed quote is charged. Required (422 on this "
                "field, saying the quote and the weighed amount) when the charge for the "
                "weighed grams is above `cost_cents`; recorded only then")),
            "charge_quote": {"type": ["boolean", "null"], "description": (
                "Charge the confirmed quote this once, whatever the weight")}},
            ["staff_name", "grams", "txn_no", "picked_up_by"]),
        "/jobs/{job_id}/revert-completion": _action("Undo complete", _REASON,
                                                    ["staff_name", "reason"]),
        "/jobs/{job_id}/revert-pickup": _action("Undo pickup (voids the payment)", _REASON,
                                                ["staff_name", "reason"]),
        "/jobs/{job_id}/resend-confirmation": _action(
            "Email a new confirmation link (earlier links stop working)", _STAFF,
            ["staff_name"]),
        "/jobs/{job_id}/requote": {"post": {
            "summary": "Correct a pending job's quote (weight, time, cost) before the "
                       "student confirms; a new confirmation link is emailed",
            "description": "Only while the job is `pending` (else 409, saying what to do "
                           "instead). The time rounds up to 0.5 h; the cost is the price "
                           "list's for the weight unless `cost_cents` is given. `reason` is "
                           "required and is shown to the student. The student is emailed "
                           "the new and old figures with a new link; every earlier link "
                           "stops working (its page says a newer quote was sent). One "
                           "`requote` event with `old`, `new`, `reason` and `cost_source` "
                           "(`pricing` or `staff`). 422 with field messages for bad "
                           "numbers, a missing reason or a quote equal to the current one.",
            "security": _STAFF_SECURITY,
            "parameters": [_path_id("job_id")],
            "requestBody": _json_body({
                **_STAFF, "weight_g": _GRAMS,
                "time_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 720},
                "cost_cents": {"type": ["integer", "null"], "minimum": 0,
                               "maximum": MAX_QUOTE_CENTS, "description": (
                                   "The cost in cents set by hand (optional; empty or null: "
                                   "the price list's)")},
                "reason": _text(MAX_OVERRIDE_REASON, min_length=1, multiline=True,
                                description="Why the quote changes (the student reads it)")},
                ["staff_name", "weight_g", "time_hours", "reason"]),
            "responses": {**_JOB_RESPONSE, **_errors(401, 403, 404, 409, 413, 422, 503)}}},
        "/jobs/{job_id}/review": {
            "post": {"summary": "Mark the job reviewed (it stops showing as NEW)",
                     "description": "Not a state change: allowed in every state. 409 when "
                                    "it is already reviewed (the message says by whom and "
                                    "when).",
                     "security": _STAFF_SECURITY,
                     "parameters": [_path_id("job_id")],
                     "requestBody": _json_body(_STAFF, ["staff_name"]),
                     "responses": {**_JOB_RESPONSE,
                                   **_errors(401, 403, 404, 409, 413, 422, 503)}},
            "delete": {"summary": "Undo the review (the job shows as NEW again)",
                       "description": "staff_name in the JSON body or, for clients that send "
                                      "no body with DELETE, as a query parameter. 409 when "
                                      "the job is not reviewed.",
                       "security": _STAFF_SECURITY,
                       "parameters": [_path_id("job_id"),
                                      {"name": "staff_name", "in": "query", "required": False,
                                       "schema": _STAFF_NAME}],
                       "requestBody": _json_body(_STAFF, [], body_required=False),
                       "responses": {**_JOB_RESPONSE,
                                     **_errors(401, 403, 404, 409, 413, 422, 503)}}},
        "/jobs/{job_id}/lock": _lock_path(),
        "/jobs/{job_id}/messages": {"get": {
            "summary": "The job's emails with their delivery state, newest first",
            "security": _STAFF_SECURITY,
            "parameters": [_path_id("job_id")],
            "responses": {**_ok(200, "the job's messages", _object({
                "messages": {"type": "array", "items": _ref("Message")}})),
                **_errors(401, 404, 422)}}},
        "/jobs/{job_id}/thumbnail": {"get": {
            "summary": "A 256x256 PNG preview of the job's model: the 3MF's own plate image "
                       "when it has one, else drawn from the mesh (made once, then stored)",
            "security": _STAFF_SECURITY,
            "parameters": [_path_id("job_id")],
            "responses": {"200": {"description": "the preview",
                                  "content": {"image/png": {"schema": {
                                      "type": "string", "format": "binary"}}}},
                          **_errors(401, 404, 422, 503)}}},
        "/messages/{message_id}/retry": {"post": {
            "summary": "Send a failed (or waiting) email again now",
            "security": _STAFF_SECURITY,
            "parameters": [_path_id("message_id")],
            "requestBody": _json_body(_STAFF, ["staff_name"]),
            "responses": {**_ok(200, "the message, pending again", _ref("Message")),
                          **_errors(401, 403, 404, 413, 422)}}},
    }


def _lock_path() -> dict[str, Any]:
    held = {"409": {"description": "Someone else holds the lock (`lock_held`); `lock` is "
                                   "theirs",
                    "content": {"application/json": {"schema": _object({
                        "error": _object({"code": {"type": "string", "const": "lock_held"},
                                          "message": {"type": "string"}}),
                        "lock": _ref("Lock")})}}}}
    body = {"staff_name": _STAFF_NAME,
            "workstation": _text(200, description=(
                "Optional; must equal the login's workstation (the lock's)"))}
    return {
        "post": {"summary": "Take, refresh (heartbeat) or take over the job's soft lock",
                 "description": "Taken at the login's workstation for `action` (default "
                                "`work`) for PRINTCORE_LOCK_SECONDS (120 s); the holder "
                                "calling again refreshes it (no event); anyone else gets "
                                "409 unless `take_over` is true (recorded as a "
                                "`lock_taken_over` event).",
                 "security": _STAFF_SECURITY,
                 "parameters": [_path_id("job_id")],
                 "requestBody": _json_body({
                     **body, "action": {"type": "string", "enum": list(LOCK_ACTIONS)},
                     "take_over": {"type": ["boolean", "null"]}}, ["staff_name"]),
                 "responses": {**_ok(200, "the lock now held", _object({
                     "lock": _ref("Lock"),
                     "outcome": {"type": "string",
                                 "enum": ["taken", "refreshed", "taken_over"]}})),
                     **held, **_errors(401, 403, 404, 413, 422, 503)}},
        "delete": {"summary": "Release the job's soft lock (the holder only)",
                   "description": "staff_name in the JSON body or as a query parameter. "
                                  "`released` is null when there was no live lock.",
                   "security": _STAFF_SECURITY,
                   "parameters": [_path_id("job_id"),
                                  {"name": "staff_name", "in": "query", "required": False,
                                   "schema": _STAFF_NAME}],
                   "requestBody": _json_body(body, [], body_required=False),
                   "responses": {**_ok(200, "released", _object({
                       "lock": {"type": "null"},
                       "released": {"oneOf": [{"type": "null"}, _ref("Lock")]}})),
                       **held, **_errors(401, 403, 404, 413, 422, 503)}},
    }


def _pricing_paths() -> dict[str, Any]:
    money = {"type": "string", "pattern": "^\\$[0-9,]+\\.[0-9]{2}$"}
    return {"/pricing/quote": {"get": {
        "summary": "What a weight costs, and what a pickup of it would charge",
        "description": "For the live cost figures of the approval and pickup forms. With "
                       "`quoted_cents` (the confirmed quote), `charge_cents` is what a pickup "
                       "charges under the lab's `policy` and `above_quote` whether that needs "
                       "an override reason; without it the three are null.",
        "security": _STAFF_SECURITY,
        "parameters": [
            {"name": "print_method", "in": "query", "required": True,
             "schema": {"type": "string", "enum": ["filament", "resin"]}},
            {"name": "grams", "in": "query", "required": True,
             "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 100_000}},
            {"name": "quoted_cents", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000}}],
        "responses": {**_ok(200, "the figures, in integer cents", _object({
            "print_method": {"type": "string", "enum": ["filament", "resin"]},
            "grams": {"type": "number"}, "cost_cents": {"type": "integer", "minimum": 0},
            "cost": money, "material_cents": {"type": "integer", "minimum": 0},
            "minimum_cents": {"type": "integer", "minimum": 0},
            "minimum_applies": {"type": "boolean"},
            "cents_per_gram": {"type": "string", "description": "Decimal, e.g. `6.5`"},
            "policy": {"type": "string", "enum": ["weighed", "quote", "lower"]},
            "quoted_cents": {"type": ["integer", "null"]},
            "charge_cents": {"type": ["integer", "null"]},
            "charge": {"oneOf": [{"type": "null"}, money]},
            "above_quote": {"type": ["boolean", "null"]}})),
            **_errors(401, 422)}}}}


def _export_paths() -> dict[str, Any]:
    """``GET /reports/payments.xlsx`` and ``.csv`` (adapters.web.exports_api)."""
    day = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
    params = [{"name": name, "in": "query", "required": True, "schema": day,
               "description": f"{what} day (YYYY-MM-DD, the lab's zone, included)"}
              for name, what in (("from", "First"), ("to", "Last"))]
    paths: dict[str, Any] = {}
    for ext, media, kind in (
            ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "Excel workbook"), ("csv", "text/csv", "CSV file")):
        paths[f"/reports/payments.{ext}"] = {"get": {
            "summary": f"Payments recorded in a date range, as an {kind}",
            "description": "One row per payment, voided ones included and marked; an empty "
                           "range gives the header row only. Named "
                           f"`payments-<from>-to-<to>.{ext}` (Content-Disposition). 422 for "
                           "an unparseable date, a year before 2000, `to` before `from`, or "
                           "more than 3653 days.",
            "security": _STAFF_SECURITY,
            "parameters": params,
            "responses": {"200": {
                "description": kind,
                "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                "content": {media: {"schema": {"type": "string", "format": "binary"}}}},
                **_errors(401, 422)}}}
    return paths


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "printcore API", "version": "1",
                 "description": "Print requests from upload to pickup. Money in integer "
                                "cents, weights in grams, times in hours, datetimes UTC "
                                "(ISO 8601). Errors are `{\"error\": {\"code\", \"message\", "
                                "\"fields\"?, \"state\"?, \"retry_after\"?}}`. Any text "
                                "must be UTF-8-encodable without control characters "
                                "(newline and tab only in notes and reasons), JSON integers "
                                "within ±(2^63−1), non-upload bodies at most 1 MiB."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "The token from POST /auth/login; ended by "
                                          "POST /auth/logout and by a password change"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "printcore_session",
                           "description": "Unsafe methods also need the X-CSRF-Token header"},
            },
            "schemas": {
                "Error": _ERROR_SCHEMA,
                "Actor": _ACTOR,
                "SliceEstimate": _ESTIMATE,
                "JobFile": _JOB_FILE,
                "Payment": _PAYMENT,
                "Event": _EVENT,
                "Job": _JOB,
                "Lock": _LOCK,
                "Message": _MESSAGE,
                "Printer": _PRINTER,
                "Ticket": _TICKET,
                "Queue": _QUEUE_SCHEMA,
            },
        },
        "paths": {
            "/health": {"get": {
                "summary": "Liveness and the database kind in use",
                "security": _PUBLIC,
                "responses": {**_ok(200, "ok", _object({
                    "status": {"type": "string", "const": "ok"},
                    "database": {"type": "string", "enum": ["sqlite", "postgresql"]}})),
                    **_errors(422)}}},
            **health_paths(_errors, _PUBLIC),
            "/openapi.json": {"get": {
                "summary": "This document",
                "security": _PUBLIC,
                "responses": {**_ok(200, "The OpenAPI 3.1 document", {
                    "type": "object", "required": ["openapi", "info", "paths"]}),
                    **_errors(422)}}},
            "/submissions": {"post": {
                "summary": "Submit a print request (the student form)",
                "security": _PUBLIC,
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": {"type": "object", "properties": _submission_fields(),
                               "required": ["student_name", "email", "discipline",
                                            "print_method", "color", "file"]}}}},
                "responses": {**_ok(201, "Created", _object({
                    "id": {"type": "integer"},
                    "status": {"type": "string", "const": "uploaded"},
                    "status_url": {"type": "string", "pattern": "^/status/"}})),
                    **_errors(413, 415, 422, 429, 503)}}},
            "/auth/login": {"post": {
                "summary": "Log a workstation in with the shared staff password",
                "security": _PUBLIC,
                "requestBody": _json_body({"workstation": _text(200),
                                           "password": {"type": "string", "minLength": 1,
                                                        "maxLength": 1000}}, ["password"]),
                "responses": {**_ok(200, "The bearer token and the session's CSRF token; "
                                         "also sets the session cookie", _object({
                    "workstation": {"type": "string"}, "token": {"type": "string"},
                    "csrf_token": {"type": "string"}})),
                    **_errors(401, 413, 422, 429)}}},
            "/auth/logout": {"post": {
                "summary": "End the caller's session (cookie) or bearer token",
                "security": _STAFF_SECURITY,
                "responses": {**_ok(200, "logged out", _object({
                    "status": {"type": "string", "const": "logged_out"}})),
                    **_errors(401, 403, 413, 422)}}},
            "/staff": {"get": {
                "summary": "Active staff names",
                "security": _STAFF_SECURITY,
                "responses": {**_ok(200, "names", _object({
                    "staff": {"type": "array", "items": {"type": "string"}}})),
                    **_errors(401, 422)}}},
            **_job_paths(),
            "/confirm": {"post": {
                "summary": "The student confirms the cost with the emailed token",
                "security": _PUBLIC,
                "requestBody": _json_body({"token": _text(2000, min_length=1)}, ["token"]),
                "responses": {**_ok(200, "confirmed", _object({
                    "id": {"type": "integer"}, "status": {"type": "string"}})),
                    **_errors(400, 404, 409, 413, 422)}}},
            "/slicer/opened": {"post": {
                "summary": "The slicer opener reports that a job's file was opened",
                "description": "Authorised by the signed print3d:// link itself (one report "
                               "per link), not by a staff login.",
                "security": _PUBLIC,
                "requestBody": _json_body({
                    "link": {"type": "string", "pattern": "^print3d://"},
                    "host": _text(120), "slicer": _text(120)}, ["link"]),
                "responses": {**_ok(201, "the recorded event", _object({
                    "event": _ref("Event")})),
                    **_errors(401, 404, 409, 413, 422, 503)}}},
            **_queue_paths(),
            **_pricing_paths(),
            **analytics_paths(_errors, _STAFF_SECURITY),
            **audit_paths(_errors, _STAFF_SECURITY),
            **_export_paths(),
        },
    }
