"""``GET /api/v1/health/ready``: the readiness checks (:mod:`adapters.health`).

No login: monitoring calls it. The answer names each check with its outcome (200 when all
pass, 503 naming the failing ones) and never contains a password. The checks come from
``app.state.readiness`` (a :class:`adapters.health.Readiness`, set by the wiring); without
one the route answers 503 saying so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["health_api_routes"]

Handler = Callable[[Request], Awaitable[Response]]


def health_api_routes(endpoint: Callable[[Handler], Any]) -> list[Route]:
    async def ready(request: Request) -> Response:
        readiness = getattr(request.app.state, "readiness", None)
        if readiness is None:
            return JSONResponse({"status": "failing", "failing": ["configuration"], "checks": [
                {"name": "configuration", "ok": False, "detail": "No readiness checks are "
                 "wired into this app.", "action": "Start the app with `printcore serve`.",
                 "data": {}}]}, status_code=503,
                headers={"Cache-Control": "no-store"})
        report = await run_in_threadpool(readiness.run)
        return JSONResponse(report.as_json(), status_code=200 if report.ok else 503,
                            headers={"Cache-Control": "no-store"})

    return [Route("/health/ready", endpoint(ready))]
