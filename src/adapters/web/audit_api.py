"""The storage integrity audit on the web: ``GET /api/v1/admin/audit``,
``POST /api/v1/admin/audit/repair`` and its admin page (issue 13). Registration point."""

from __future__ import annotations

from starlette.routing import BaseRoute

from adapters.web.context import WebContext
from adapters.web.render import Renderer

__all__ = ["audit_routes"]


def audit_routes(ctx: WebContext, render: Renderer) -> list[BaseRoute]:
    return []
