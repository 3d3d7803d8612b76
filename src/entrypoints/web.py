"""The web process: the Starlette app on uvicorn, wired from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from adapters.web import WebContext, create_app
from adapters.web.inspection import Inspector
from adapters.web.throttle import Limits, Throttle
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.opener_links import LinkSigner
from entrypoints.settings import Settings, load_settings

__all__ = ["app_from_container", "asgi_app"]


def app_from_container(container: Container, isolated_inspection: bool = True) -> Starlette:
    s = container.settings
    inspector = Inspector(isolated=isolated_inspection)
    ctx = WebContext(
        requests=container.requests,
        staff=container.staff,
        files=container.files,
        staging=container.staging,
        inspector=inspector,
        signer=container.signer,
        secret_key=s.secret_key,
        max_upload_bytes=s.max_upload_bytes,
        timezone=s.timezone,
        lab_name=s.lab_name,
        database_kind=container.database_kind,
        storage_root=s.storage_root,
        https_only=s.https_only,
        queue=container.queue,
        access_hours=s.access_hours,
        outbox=container.outbox,
        opener_links=LinkSigner(s.opener_secret) if s.opener_secret else None,
        throttle=Throttle(
            Limits(login_failures_per_minute=s.login_failures_per_minute,
                   submissions_per_hour=s.submissions_per_hour,
                   submission_mail_per_hour=s.submission_mail_per_hour),
            storage_uri=s.redis_url or "memory://",
            namespace=Throttle.namespace_for(s.secret_key),
        ),
    )
    app = create_app(ctx)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        container.staging.sweep()
        container.start_delivery()
        try:
            yield
        finally:
            inspector.close()
            container.close()

    app.router.lifespan_context = lifespan
    return app


def asgi_app(settings: Settings | None = None) -> Starlette:
    """For ASGI servers: ``uvicorn --factory entrypoints.web:asgi_app``."""
    return app_from_container(bootstrap(settings or load_settings()))
