"""``GET /staff/events``: Server-Sent Events for open staff pages (staff session required).

Each committed change is one ``change`` event: ``id`` is the event log's id, ``data`` a
JSON object ``{"id", "subject", "subject_id", "kind", "at" (UTC ISO), "to_status"}``.
A new stream starts with a ``ready`` event carrying the newest id; a stream that
reconnects with ``Last-Event-ID`` (browsers do it by themselves; or ``?last_event_id=``)
first gets every change after that id, so nothing is lost. Between wake-ups the stream
reads the event log every ``LiveHub.poll_seconds`` (1 s on SQLite, 5 s with NOTIFY/Redis). A comment line every 15 s keeps
proxies from closing an idle stream; the session is checked again every 30 s, so a
stream ends soon after its login is ended (logout, password change).

Pages use it through ``static/printcore.js``: on a change they fetch themselves again and
swap the parts marked ``data-live-region``; a "last updated" line says when, or that the
stream is down (the page then reloads its parts every 45 s until it is back).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from adapters.web.context import WebContext
from adapters.web.responses import plain_error
from adapters.web.security import workstation
from printcore.errors import AuthenticationError

__all__ = ["live_routes"]

KEEPALIVE_SECONDS = 15.0
RECHECK_SESSION_SECONDS = 30.0


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw and raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    return None


def live_routes(ctx: WebContext) -> list[Route]:
    async def events(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError as err:
            return plain_error("unauthenticated", err.message, 401)
        feed, hub = ctx.live_feed, ctx.live_hub
        if feed is None or hub is None:
            return plain_error("not_available", "Live updates are not set up here.", 503)
        start = _last_event_id(request)

        async def stream() -> AsyncIterator[str]:
            last = start
            yield "retry: 2000\n\n"
            if last is None:
                last = await anyio.to_thread.run_sync(feed.latest_id)
                yield f"id: {last}\nevent: ready\ndata: {json.dumps({'id': last})}\n\n"
            quiet_since = checked_at = time.monotonic()
            while True:
                changes = await anyio.to_thread.run_sync(feed.after, last)
                for change in changes:
                    last = change.id
                    yield f"id: {change.id}\nevent: change\ndata: {json.dumps(change.as_json())}\n\n"
                now = time.monotonic()
                if changes:
                    quiet_since = now
                elif now - quiet_since >= KEEPALIVE_SECONDS:
                    quiet_since = now
                    yield ": keep-alive\n\n"
                if now - checked_at >= RECHECK_SESSION_SECONDS:
                    checked_at = now
                    try:
                        await anyio.to_thread.run_sync(lambda: workstation(request, ctx))
                    except AuthenticationError:
                        yield "event: ended\ndata: {}\n\n"
                        return
                await hub.wait(hub.poll_seconds)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    return [Route("/staff/events", events)]
