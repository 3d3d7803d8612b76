"""``GET /metrics``: figures for Prometheus, in its text format (prometheus-client).

Read from the database at each scrape (no counters kept in the process, so every web
process answers the same):

* ``printcore_jobs{state="uploaded"|...}`` — jobs per state (every state, 0 included);
* ``printcore_outbox_waiting`` — messages waiting to be delivered;
* ``printcore_outbox_oldest_waiting_seconds`` — how long the oldest of them has waited;
* ``printcore_outbox_failed`` — messages that gave up (staff retry them);
* ``printcore_up`` — 1 when the figures could be read, 0 when the database failed.

No login (the scraper's network is the protection; counts only, no names or emails).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.sql.tables import jobs, outbox
from printcore.requests.job import JobStatus

__all__ = ["PrintcoreCollector", "metrics_registry", "metrics_routes"]


class PrintcoreCollector(Collector):
    """Collects the figures above from ``engine``; ``now`` gives the UTC time."""

    def __init__(self, engine: Engine, now: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._now = now or (lambda: datetime.now(UTC))

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("printcore_up", "1 when the database could be read")
        try:
            with self._engine.connect() as conn:
                by_state: dict[str, int] = dict(conn.execute(
                    select(jobs.c.status, func.count()).group_by(jobs.c.status)).all())
                waiting, oldest = conn.execute(
                    select(func.count(), func.min(outbox.c.created_at))
                    .where(outbox.c.status == "pending")).one()
                failed = conn.execute(select(func.count()).select_from(outbox)
                                      .where(outbox.c.status == "failed")).scalar_one()
                conn.rollback()
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        gauge = GaugeMetricFamily("printcore_jobs", "Jobs per state", labels=["state"])
        for state in JobStatus:
            gauge.add_metric([state.value], int(by_state.get(state.value, 0)))
        yield gauge
        age = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            age = max(0.0, (self._now() - oldest).total_seconds())
        yield GaugeMetricFamily("printcore_outbox_waiting", "Messages waiting for delivery",
                                value=int(waiting))
        yield GaugeMetricFamily("printcore_outbox_oldest_waiting_seconds",
                                "Age of the oldest waiting message, seconds", value=age)
        yield GaugeMetricFamily("printcore_outbox_failed", "Messages that gave up",
                                value=int(failed))


def metrics_registry(engine: Engine, now: Callable[[], datetime] | None = None
                     ) -> CollectorRegistry:
    """A registry of its own (not the global one) holding a :class:`PrintcoreCollector`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PrintcoreCollector(engine, now))
    return registry


def metrics_routes() -> list[Route]:
    """``/metrics`` from ``app.state.metrics`` (a registry set by the wiring; 404 without)."""

    async def metrics(request: Request) -> Response:
        registry = getattr(request.app.state, "metrics", None)
        if registry is None:
            return Response("metrics are not set up\n", status_code=404,
                            media_type="text/plain")
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})

    return [Route("/metrics", metrics, methods=["GET"])]
