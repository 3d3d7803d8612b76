"""Retention on the web: preview, archive and prune old finished jobs from the admin area
(issue 13). Registration point."""

from __future__ import annotations

from starlette.routing import BaseRoute

from adapters.web.context import WebContext
from adapters.web.render import Renderer

__all__ = ["retention_routes"]


def retention_routes(ctx: WebContext, render: Renderer) -> list[BaseRoute]:
    return []
