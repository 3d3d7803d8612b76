"""The OpenAPI description of ``GET /health/ready`` (:mod:`adapters.web.health_api`),
merged into :func:`adapters.web.openapi.openapi_document`."""

from __future__ import annotations

from typing import Any

__all__ = ["health_paths"]

_CHECK = {"type": "object", "required": ["name", "ok", "detail", "action", "data"],
          "properties": {
              "name": {"type": "string", "description": "database, storage, redis, worker, bot, outbox"},
              "ok": {"type": "boolean"},
              "detail": {"type": "string", "description": "what was found"},
              "action": {"type": ["string", "null"], "description": "what to do; null when ok"},
              "data": {"type": "object", "description": "the figures: database kind, host, "
                       "database name, revision and head; storage root, writable, "
                       "free_bytes, marker, jobs_in_database; redis host and port; worker and "
                       "bot heartbeat age_seconds, at (UTC), host, pid, max_age_seconds; "
                       "outbox waiting, oldest_waiting_seconds, failed, max_age_seconds"}}}
_REPORT = {"type": "object", "required": ["status", "failing", "checks"], "properties": {
    "status": {"type": "string", "enum": ["ok", "failing"]},
    "failing": {"type": "array", "items": {"type": "string"}},
    "checks": {"type": "array", "items": _CHECK}}}


def health_paths(errors: Any, public: list[Any]) -> dict[str, Any]:
    """``errors(*codes)`` gives the error answers (the document's own helper)."""
    return {"/health/ready": {"get": {
        "summary": "Readiness: database (kind, host, name, migration vs head), storage root "
                   "(writable, free bytes, the lab's marker), Redis and the worker's heartbeat "
                   "when REDIS_URL is set, the bot's heartbeat when DISCORD_TOKEN is set, "
                   "outbox backlog. No passwords in the answer.",
        "security": public,
        "responses": {
            "200": {"description": "every check passed",
                    "content": {"application/json": {"schema": _REPORT}}},
            "503": {"description": "at least one check failed; `failing` names them",
                    "content": {"application/json": {"schema": _REPORT}}},
            **{k: v for k, v in errors(422).items()}}}}}
