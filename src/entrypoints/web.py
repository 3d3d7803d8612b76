"""The web process: the Starlette app on uvicorn, wired from settings."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from adapters.live import ChangeFeed
from adapters.metrics import metrics_registry
from adapters.printers_file import PrintersFileError, read_printers
from adapters.sql.analytics import SqlHistory
from adapters.web import WebContext, create_app
from adapters.web.inspection import Inspector
from adapters.web.throttle import Limits, Throttle
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.doctor import readiness_for
from entrypoints.opener.paths import extension_of
from entrypoints.opener.token import OpenLink, check_secret, make_link, parse_link, verify
from entrypoints.reminders import loop_for
from entrypoints.settings import Settings, load_settings
from printcore.requests.ages import AgeThresholds
from printcore.requests.analytics import Analytics

__all__ = ["LinkSigner", "app_from_container", "asgi_app"]


class LinkSigner:
    """The server's side of the print3d:// links: makes and checks them with one secret
    (``PRINTCORE_OPENER_SECRET``). The web adapter sees it only as its ``OpenerLinks``
    protocol, so adapters never import entrypoints. The links themselves are the opener's
    (``entrypoints.opener.token``), so both sides agree on them.

    Raises ValueError at construction for a secret under 16 characters.
    """

    def __init__(self, secret: str) -> None:
        self._secret = check_secret(secret, "PRINTCORE_OPENER_SECRET")

    def make(self, job_id: int, file: str, expires: int, workstation: str) -> str:
        """A signed link to ``file`` (``/``-separated, relative to the storage root) of
        job ``job_id``, valid until ``expires`` (UTC epoch seconds)."""
        return make_link(self._secret, job_id, file, expires, workstation)

    def check(self, url: object, now: float, grace_seconds: float = 0) -> OpenLink:
        """The link, when well formed, signed with this secret and not expired at ``now``
        (UTC epoch seconds, with ``grace_seconds`` of slack). Raises
        ``entrypoints.opener.token.Refused`` (a ValueError) otherwise."""
        link = parse_link(url)
        verify(link, self._secret, now, grace_seconds)
        return link

    def opens(self, name: str) -> bool:
        """Whether a slicer opens a file called ``name`` (by its extension)."""
        return extension_of(name) is not None


def _printer_choices(s: Settings) -> tuple[str, ...]:
    """The printers file's names, for the preferred-printer lists (none when the file is
    missing or unusable: the forms then offer free text only)."""
    try:
        return tuple(name for name, _ in read_printers(s.printers_file))
    except (OSError, PrintersFileError):
        return ()


def app_from_container(container: Container, isolated_inspection: bool = True) -> Starlette:
    s = container.settings
    inspector = Inspector(isolated=isolated_inspection, workers=s.inspect_workers,
                          max_waiting=s.inspect_queue_max)
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
        live_feed=ChangeFeed(container.engine),
        live_hub=container.live,
        age_thresholds=AgeThresholds(s.age_amber_hours, s.age_red_hours),
        colors=s.colors,
        printer_choices=_printer_choices(s),
        analytics=Analytics(SqlHistory(container.engine), container.clock, s.timezone),
        settings_in_effect=s.describe(),
        archive_dir=s.home / "archives",
        finance_email=s.finance_email,
    )
    app = create_app(ctx)
    app.state.readiness = readiness_for(s, container.engine, container.clock.now)
    app.state.metrics = metrics_registry(container.engine, container.clock.now,
                                         redis_url=s.redis_url)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        container.staging.sweep()
        container.start_delivery()
        # Without Redis this process delivers, so it sends the reminders too (with Redis,
        # `printcore worker` does).
        reminders = loop_for(container) if container.inline is not None else None
        if reminders is not None:
            reminders.start()
        if container.live is not None:
            container.live.attach(asyncio.get_running_loop())
        # What start-up built (modules, templates, the container) lives as long as the
        # process: keep it out of the cyclic collector's full passes, which otherwise walk
        # it on every third request that reads 10,000 queue rows (bench_queue --gc-freeze).
        gc.freeze()
        try:
            yield
        finally:
            if reminders is not None:
                reminders.stop()
            inspector.close()
            container.close()

    app.router.lifespan_context = lifespan
    return app


def asgi_app(settings: Settings | None = None) -> Starlette:
    """For ASGI servers: ``uvicorn --factory entrypoints.web:asgi_app``."""
    return app_from_container(bootstrap(settings or load_settings()))
