"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Bad token", 401: "Not logged in", 403: "CSRF check failed", 404: "No such job",
            409: "Not allowed in this state, or changed by someone else",
            413: "File over the upload limit", 415: "Not a model / sliced file",
            422: "Invalid fields", 503: "Not available on this server"}
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": _ERROR}}}
        for c in codes
    }


def _json_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "properties": properties, "required": required}}},
    }


_STAFF = {"staff_name": {"type": "string", "description": "An active staff member's name"},
          "version": {"type": "integer", "description": "The job version you saw (optional)"}}
_REASON = {**_STAFF, "reason": {"type": "string"}}
_JOB_RESPONSE = {"200": {"description": "The job after the change", "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}}


def _action(summary: str, body: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "security": [{"bearer": []}, {"cookie": []}],
        "parameters": [{"name": "job_id", "in": "path", "required": True,
                        "schema": {"type": "integer"}}],
        "requestBody": _json_body(body, required),
        "responses": {**_JOB_RESPONSE, **_errors(401, 404, 409, 422)},
    }}


_QUEUE_RESPONSE = {"200": {"description": "message (what happened) and queue (as GET /queue)",
                           "content": {"application/json": {"schema": {
                               "type": "object", "properties": {
                                   "message": {"type": "string"},
                                   "queue": {"$ref": "#/components/schemas/Queue"}}}}}}}
_QUEUE_STAFF = {"staff_name": {"type": "string", "description": "An active staff member's name"},
                "version": {"type": "integer",
                            "description": "The printer's version you saw (optional; a "
                                           "changed printer answers 409)"}}


def _printer_action(summary: str) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "security": [{"bearer": []}, {"cookie": []}],
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "requestBody": _json_body(_QUEUE_STAFF, ["staff_name"]),
        "responses": {**_QUEUE_RESPONSE, **_errors(401, 403, 404, 409, 422)},
    }}


def _queue_paths() -> dict[str, Any]:
    return {
        "/queue": {"get": {
            "summary": "Self-service printers, the queue with positions and ETAs, recent "
                       "closed prints, access hours and whether the lab is open",
            "security": [{"bearer": []}, {"cookie": []}],
            "responses": {"200": {"description": "the queue", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Queue"}}}}, **_errors(401)}}},
        "/queue/tickets/{ticket_id}": {"delete": {
            "summary": "Staff: remove a ticket from the queue",
            "security": [{"bearer": []}, {"cookie": []}],
            "parameters": [{"name": "ticket_id", "in": "path", "required": True,
                            "schema": {"type": "integer"}},
                           {"name": "staff_name", "in": "query", "schema": {"type": "string"}}],
            "responses": {**_QUEUE_RESPONSE, **_errors(401, 403, 404, 409, 422)}}},
        "/printers/{name}/release": _printer_action(
            "Staff: free a printer (its holder goes back to the queue head, or a forgotten "
            "print is closed as finished)"),
        "/printers/{name}/out-of-service": _printer_action("Staff: take a printer out of service"),
        "/printers/{name}/back-in-service": _printer_action("Staff: put a printer back in service"),
    }


_QUEUE_SCHEMA = {"type": "object", "properties": {
    "now": {"type": "string", "format": "date-time"},
    "timezone": {"type": "string", "description": "The lab's zone, for display"},
    "access_hours": {"type": "object", "properties": {
        "spec": {"type": "string"}, "open_now": {"type": "boolean"},
        "always_open": {"type": "boolean"},
        "next_change": {"type": ["string", "null"], "format": "date-time",
                        "description": "When the lab closes (open now) or opens (closed)"}}},
    "printers": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "label": {"type": "string"},
        "status": {"type": "string", "enum": ["idle", "offered", "claimed", "printing",
                                              "out_of_service"]},
        "version": {"type": "integer"}, "holder_name": {"type": ["string", "null"]},
        "print_member_name": {"type": ["string", "null"]}}}},
    "queue": {"type": "array", "description": "Open tickets in FIFO order", "items": {
        "type": "object", "properties": {
            "id": {"type": "integer"}, "member_name": {"type": "string"},
            "job_name": {"type": "string"}, "est_minutes": {"type": "integer"},
            "status": {"type": "string"},
            "position": {"type": "integer", "description": "1-based among queued; 0 once "
                                                           "offered, claimed or printing"},
            "eta": {"type": ["string", "null"], "format": "date-time"}}}},
    "history": {"type": "array", "items": {"type": "object"}}}}


def openapi_document() -> dict[str, Any]:
    submission_fields = {
        name: {"type": "string"}
        for name in ("student_name", "email", "discipline", "class_number", "color",
                     "preferred_printer", "notes")
    }
    submission_fields["print_method"] = {"type": "string", "enum": ["filament", "resin"]}
    submission_fields["file"] = {"type": "string", "format": "binary",
                                 "description": ".stl (binary or ASCII), .obj or .3mf"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "printcore API", "version": "1",
                 "description": "Print requests from upload to pickup. Money in integer "
                                "cents, weights in grams, times in hours, datetimes UTC."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "printcore_session",
                           "description": "Unsafe methods also need the X-CSRF-Token header"},
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                   "fields": {"type": "object",
                                              "additionalProperties": {"type": "string"}}}}}},
                "Job": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "status": {"type": "string"},
                    "version": {"type": "integer"}, "weight_g": {"type": ["number", "null"]},
                    "time_hours": {"type": ["number", "null"]},
                    "cost_cents": {"type": ["integer", "null"]},
                    "files": {"type": "array", "items": {"type": "object"}},
                    "allowed_actions": {"type": "array", "items": {"type": "string"}},
                    "events": {"type": "array", "items": {"type": "object"}}}},
                "Queue": _QUEUE_SCHEMA,
            },
        },
        "paths": {
            "/health": {"get": {"summary": "Liveness and the database kind in use",
                                "responses": {"200": {"description": "ok"}}}},
            "/submissions": {"post": {
                "summary": "Submit a print request (the student form)",
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": {"type": "object", "properties": submission_fields,
                               "required": ["student_name", "email", "discipline",
                                            "print_method", "color", "file"]}}}},
                "responses": {"201": {"description": "Created: id and status"},
                              **_errors(413, 415, 422)}}},
            "/auth/login": {"post": {
                "summary": "Log a workstation in with the shared staff password",
                "requestBody": _json_body({"workstation": {"type": "string"},
                                           "password": {"type": "string"}}, ["password"]),
                "responses": {"200": {"description": "token, csrf_token; sets the cookie"},
                              **_errors(401)}}},
            "/staff": {"get": {"summary": "Active staff names",
                               "responses": {"200": {"description": "names"}}}},
            "/jobs": {"get": {
                "summary": "List jobs", "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "jobs and counts per status"},
                              **_errors(401, 422)}}},
            "/jobs/{job_id}": {
                "get": {"summary": "A job with its events",
                        "parameters": [{"name": "job_id", "in": "path", "required": True,
                                        "schema": {"type": "integer"}}],
                        "responses": {**_JOB_RESPONSE, **_errors(401, 404)}},
                "delete": {"summary": "Delete an uploaded or pending job",
                           "parameters": [{"name": "job_id", "in": "path", "required": True,
                                           "schema": {"type": "integer"}}],
                           "requestBody": _json_body(_STAFF, ["staff_name"]),
                           "responses": {"200": {"description": "deleted"},
                                         **_errors(401, 404, 409)}}},
            "/jobs/{job_id}/files": {"post": {
                "summary": "Upload a sliced file; answers with the slicer's estimate",
                "parameters": [{"name": "job_id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": {"type": "object", "properties": {
                        "staff_name": {"type": "string"},
                        "file": {"type": "string", "format": "binary"}}}}}},
                "responses": {"201": {"description": "file, estimate, prefill"},
                              **_errors(401, 404, 409, 413, 415, 422)}}},
            "/jobs/{job_id}/approve": _action("Approve with weight and time", {
                **_STAFF, "weight_g": {"type": "number"}, "time_hours": {"type": "number"},
                "authoritative_file": {"type": "string"}},
                ["staff_name", "weight_g", "time_hours", "authoritative_file"]),
            "/jobs/{job_id}/reject": _action("Reject with reasons", {
                **_STAFF, "reasons": {"type": "array", "items": {"type": "string"}},
                "custom_reason": {"type": "string"}}, ["staff_name"]),
            "/jobs/{job_id}/force-confirm": _action("Confirm for the student", _REASON,
                                                    ["staff_name", "reason"]),
            "/jobs/{job_id}/mark-printing": _action("Start printing", {
                **_STAFF, "printer": {"type": "string"}}, ["staff_name"]),
            "/jobs/{job_id}/mark-failed": _action("The print failed", _REASON,
                                                  ["staff_name", "reason"]),
            "/jobs/{job_id}/mark-complete": _action("Printed; email the student", _STAFF,
                                                    ["staff_name"]),
            "/jobs/{job_id}/payment": _action("Record payment at pickup", {
                **_STAFF, "grams": {"type": "number"}, "txn_no": {"type": "string"},
                "picked_up_by": {"type": "string"}},
                ["staff_name", "grams", "txn_no", "picked_up_by"]),
            "/jobs/{job_id}/revert-completion": _action("Undo complete", _REASON,
                                                        ["staff_name", "reason"]),
            "/jobs/{job_id}/revert-pickup": _action("Undo pickup (voids the payment)", _REASON,
                                                    ["staff_name", "reason"]),
            "/jobs/{job_id}/resend-confirmation": _action(
                "Email a new confirmation link (earlier links stop working)", _STAFF,
                ["staff_name"]),
            "/jobs/{job_id}/messages": {"get": {
                "summary": "The job's emails with their delivery state, newest first",
                "parameters": [{"name": "job_id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "messages: id, kind, recipient, status "
                                      "(pending|sent|failed), attempts, last_error"},
                              **_errors(401, 404)}}},
            "/messages/{message_id}/retry": {"post": {
                "summary": "Send a failed (or waiting) email again now",
                "parameters": [{"name": "message_id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": _json_body(_STAFF, ["staff_name"]),
                "responses": {"200": {"description": "the message, pending again"},
                              **_errors(401, 404, 422)}}},
            "/confirm": {"post": {
                "summary": "The student confirms the cost with the emailed token",
                "requestBody": _json_body({"token": {"type": "string"}}, ["token"]),
                "responses": {"200": {"description": "confirmed"}, **_errors(400, 404)}}},
            **_queue_paths(),
        },
    }
