"""OpenAPI paths of the storage integrity audit (``/admin/audit``, ``/admin/audit/repair``,
:mod:`adapters.web.audit_api`), merged into adapters.web.openapi's spec."""

from __future__ import annotations

from typing import Any

from adapters.files.audit import KINDS

__all__ = ["audit_paths"]

_COUNT = {"type": "integer", "minimum": 0}
_JOB_ID = {"type": ["integer", "null"], "minimum": 1,
           "description": "The job the finding is about (null: no job, e.g. a partial upload)"}
_PATH = {"type": "string", "description": "Relative to the storage root, e.g. "
                                          "`Pending/JaneDoe_Filament_Red_42`"}
_TARGET = {"type": ["string", "null"],
           "description": "Where the repair moves or copies to (relative), else null"}
_KIND = {"type": "string", "enum": list(KINDS)}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


_FINDING = _object({
    "kind": _KIND, "job_id": _JOB_ID, "path": _PATH, "target": _TARGET,
    "message": {"type": "string", "description": "What is wrong and, without a safe "
                                                 "repair, what to do by hand"},
    "repairable": {"type": "boolean"},
    "repair": {"type": ["string", "null"], "description": "What the safe repair does "
                                                          "(null: none)"},
})
_REPAIR = _object({
    "kind": _KIND, "job_id": _JOB_ID, "path": _PATH, "target": _TARGET,
    "action": {"type": "string"},
    "done": {"type": "boolean", "description": "false in a dry run, or when skipped"},
    "error": {"type": ["string", "null"], "description": "Why it was skipped (the job "
                                                         "changed since the scan...)"},
})


def audit_paths(errors: Any, security: list[dict[str, list[str]]]) -> dict[str, Any]:
    """The paths, keyed as in the spec (relative to ``/api/v1``); ``errors(*codes)`` gives
    the error answers (the document's own helper)."""
    report = _object({
        "jobs_checked": _COUNT, "ok": {"type": "boolean"},
        "counts": _object(dict.fromkeys(KINDS, _COUNT)),
        "findings": {"type": "array", "items": _FINDING},
    })
    repaired = _object({
        "dry_run": {"type": "boolean"}, "jobs_checked": _COUNT,
        "repairs": {"type": "array", "items": _REPAIR},
        "not_repairable": {"type": "array", "items": _FINDING},
        "remaining": _COUNT, "ok": {"type": "boolean"},
    })
    body = {"type": "object", "properties": {
        "dry_run": {"type": "boolean", "default": True,
                    "description": "true (the default): only list what would be done"},
        "staff_name": {"type": "string", "maxLength": 80,
                       "description": "An active staff member's name (required to repair)"},
        "confirm_password": {"type": "string", "maxLength": 1000,
                             "description": "The shared staff password, asked again "
                                            "(required to repair)"},
    }}
    return {
        "/admin/audit": {"get": {
            "summary": "Check the storage folders against the database (changes nothing)",
            "description": "Every job's folder, recorded files (SHA-256) and metadata.json "
                           "compared with the database, plus orphan folders and leftover "
                           "staging files. Kinds: " + ", ".join(f"`{k}`" for k in KINDS)
                           + ". Anything written in the last 10 minutes is left out (a "
                           "move or upload in progress).",
            "security": security,
            "responses": {"200": {"description": "the findings",
                                  "content": {"application/json": {"schema": report}}},
                          **errors(401, 503)}}},
        "/admin/audit/repair": {"post": {
            "summary": "Do (or, as a dry run, list) the audit's safe repairs",
            "description": "Safe repairs only: stale duplicates removed when every file in "
                           "them is in the job's folder, folders moved to the state the "
                           "database names when complete, missing files copied from an "
                           "intact copy, metadata.json rewritten from the database, staging "
                           "leftovers removed. Orphan folders and lost files are never "
                           "touched. Each repair is an `audit_repaired` event by "
                           "`staff_name`. Without `dry_run: true`, 422 unless `staff_name` "
                           "is an active staff member and `confirm_password` is right; "
                           "nothing is done then.",
            "security": security,
            "requestBody": {"required": False,
                            "content": {"application/json": {"schema": body}}},
            "responses": {"200": {"description": "what was (or would be) repaired",
                                  "content": {"application/json": {"schema": repaired}}},
                          **errors(401, 403, 413, 422, 503)}}},
    }
