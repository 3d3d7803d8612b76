"""The Starlette web UI (students and staff) and the JSON API under /api/v1."""

from adapters.web.app import create_app
from adapters.web.context import WebContext

__all__ = ["WebContext", "create_app"]
