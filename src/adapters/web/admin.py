"""The admin area, ``/staff/admin`` (issue 13): staff, password, workstations, settings,
lists, outbox and diagnostics. Registration point; the pages are built here."""

from __future__ import annotations

from starlette.routing import BaseRoute

from adapters.web.context import WebContext
from adapters.web.render import Renderer

__all__ = ["admin_routes"]


def admin_routes(ctx: WebContext, render: Renderer) -> list[BaseRoute]:
    return []
