"""``GET /metrics``: figures for Prometheus, in its text format (prometheus-client).

Read from the database (and Redis) at each scrape, so every web process answers the same:

* ``printcore_jobs{state="uploaded"|...}`` — jobs per state (every state, 0 included);
* ``printcore_outbox_waiting`` — messages waiting to be delivered;
* ``printcore_outbox_oldest_waiting_seconds`` — how long the oldest of them has waited;
* ``printcore_outbox_failed`` — messages that gave up (staff retry them);
* ``printcore_queue_length`` — open tickets of the self-service queue (queued, offered,
  claimed, printing); ``printcore_queue_tickets{state=...}`` splits them by state;
* ``printcore_sweep_duration_seconds{process="bot"|"sweeper"}`` — a histogram of the
  queue sweeps' durations, observed by the sweeping process (``printcore bot`` or
  ``printcore sweep``) and carried in its heartbeat (:mod:`adapters.heartbeat`);
* ``printcore_heartbeat_age_seconds{process=...}`` — seconds since each process's last
  heartbeat (``worker`` only when Redis is given; absent: never beat);
* ``printcore_up`` — 1 when the figures could be read, 0 when the database failed.

Kept in this process, per app (:class:`RequestMetrics`, the ASGI middleware):

* ``printcore_http_requests_total{method, route, status}`` — requests by route template
  (``/staff/jobs/{job_id}``, never the raw path, so the labels stay few; ``(unmatched)``
  for a path no route knows) and status code;
* ``printcore_http_request_duration_seconds{method, route}`` — a histogram of how long
  the answers took (seconds, until the last byte was sent).

These count the requests this one process served (each uvicorn process its own; they
start from 0 at a restart, which Prometheus's ``rate()`` expects). Each app built by
``create_app`` has its own registry, so two apps in one test process never mix counts.

No login (the scraper's network is the protection; counts only, no names or emails).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Host, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.heartbeat import Beat, DatabaseHeartbeats, RedisHeartbeats
from adapters.sql.tables import jobs, outbox, tickets
from printcore.queue.entities import OPEN_TICKET_STATUSES
from printcore.requests.job import JobStatus

__all__ = ["PrintcoreCollector", "RequestMetrics", "metrics_registry", "metrics_routes"]

#: The processes whose heartbeats are in the database, and those that sweep.
_DATABASE_BEATS = ("bot", "sweeper")
UNMATCHED = "(unmatched)"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class PrintcoreCollector(Collector):
    """Collects the database figures above from ``engine``; ``now`` gives the UTC time;
    ``redis_url`` (optional) adds the worker's heartbeat age."""

    def __init__(self, engine: Engine, now: Callable[[], datetime] | None = None,
                 redis_url: str | None = None) -> None:
        self._engine = engine
        self._now = now or (lambda: datetime.now(UTC))
        self._redis_url = redis_url

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
                open_tickets: dict[str, int] = dict(conn.execute(
                    select(tickets.c.status, func.count())
                    .where(tickets.c.status.in_(OPEN_TICKET_STATUSES))
                    .group_by(tickets.c.status)).all())
                conn.rollback()
            beats = {name: DatabaseHeartbeats(self._engine).last(name)
                     for name in _DATABASE_BEATS}
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
        yield GaugeMetricFamily("printcore_queue_length", "Open tickets in the self-service "
                                "queue (queued, offered, claimed, printing)",
                                value=sum(int(n) for n in open_tickets.values()))
        by_ticket = GaugeMetricFamily("printcore_queue_tickets", "Open tickets per state",
                                      labels=["state"])
        for ticket_state in OPEN_TICKET_STATUSES:
            by_ticket.add_metric([ticket_state], int(open_tickets.get(ticket_state, 0)))
        yield by_ticket
        yield from self._sweeps(beats)
        if self._redis_url:
            beats["worker"] = self._worker_beat()
        ages = GaugeMetricFamily("printcore_heartbeat_age_seconds", "Seconds since the "
                                 "process's last heartbeat", labels=["process"])
        for name, beat in sorted(beats.items()):
            if beat is not None:
                ages.add_metric([name], beat.age_seconds())
        yield ages

    def _worker_beat(self) -> Beat | None:
        import redis

        assert self._redis_url is not None
        store = RedisHeartbeats(self._redis_url, timeout=1.0)
        try:
            return store.last("worker")
        except (redis.RedisError, OSError):
            return None
        finally:
            store.close()

    @staticmethod
    def _sweeps(beats: dict[str, Beat | None]) -> Iterable[Any]:
        family = HistogramMetricFamily("printcore_sweep_duration_seconds",
                                       "Durations of the queue sweeps, seconds",
                                       labels=["process"])
        for name in _DATABASE_BEATS:
            beat = beats.get(name)
            snapshot = beat.data.get("sweep") if beat is not None else None
            try:
                buckets = [(_le(bound), float(count)) for bound, count in snapshot["buckets"]]  # type: ignore[index]
                count, total = float(snapshot["count"]), float(snapshot["sum"])  # type: ignore[index]
            except (TypeError, KeyError, ValueError):
                continue  # never swept, or an unreadable beat
            family.add_metric([name], buckets + [("+Inf", count)], total)
        yield family


def _le(bound: Any) -> str:
    return repr(float(bound))


def metrics_registry(engine: Engine, now: Callable[[], datetime] | None = None,
                     redis_url: str | None = None) -> CollectorRegistry:
    """A registry of its own (not the global one) holding a :class:`PrintcoreCollector`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PrintcoreCollector(engine, now, redis_url))
    return registry


class RequestMetrics:
    """ASGI middleware counting HTTP requests by method, route template and status, with
    a histogram of durations (seconds), in a registry of its own (``self.registry``),
    which it publishes as ``app.state.request_metrics`` of the Starlette app it serves
    (the ``/metrics`` route reads it there).

    The route template is found by identity of the route Starlette matched
    (``scope["route"]``, Starlette ≥ 0.50) in the app's route tree, Mount prefixes joined:
    only the app's own templates (and ``(unmatched)``) ever become labels.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("printcore_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.duration = Histogram("printcore_http_request_duration_seconds",
                                  "Time to answer an HTTP request, seconds",
                                  ["method", "route"], registry=self.registry)
        self._templates: dict[int, str] = {}
        self._mapped_from: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = getattr(scope.get("app"), "state", None)
        if state is not None and getattr(state, "request_metrics", None) is not self.registry:
            state.request_metrics = self.registry
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope.get("method", "GET")
            method = method if method in _METHODS else "other"
            route = self._template(scope)
            self.requests.labels(method, route, str(status)).inc()
            self.duration.labels(method, route).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        router = getattr(scope.get("app"), "router", None)
        if route is None or router is None:
            return UNMATCHED
        if self._mapped_from != id(router) or id(route) not in self._templates:
            self._templates = dict(_walk(router.routes, ""))
            self._mapped_from = id(router)
        return self._templates.get(id(route), UNMATCHED)


def _walk(routes: Iterable[BaseRoute], prefix: str) -> Iterator[tuple[int, str]]:
    """``(id(route), template)`` for every route under ``routes``, Mounts included."""
    for route in routes:
        if isinstance(route, Mount):  # its path_format ends in /{path}: take its own
            path = prefix + route.path_format.removesuffix("/{path}")
            yield id(route), path + "/{path}"
            yield from _walk(route.routes, path)
        elif isinstance(route, Host):
            yield from _walk(route.routes, prefix)
        elif isinstance(route, Route):
            yield id(route), prefix + route.path_format
        else:
            yield id(route), prefix + str(getattr(route, "path_format", "") or UNMATCHED)


class _Registries:
    """Several registries read as one (what ``generate_latest`` needs: ``collect()``)."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self._registries = registries

    def collect(self) -> Iterator[Any]:
        for registry in self._registries:
            yield from registry.collect()


def metrics_routes() -> list[Route]:
    """``/metrics`` from ``app.state.metrics`` (a registry set by the wiring) and
    ``app.state.request_metrics`` (set by :class:`RequestMetrics`); 404 with neither."""

    async def metrics(request: Request) -> Response:
        found = [registry for registry in (getattr(request.app.state, "metrics", None),
                                           getattr(request.app.state, "request_metrics", None))
                 if registry is not None]
        if not found:
            return Response("metrics are not set up\n", status_code=404,
                            media_type="text/plain")
        body = await run_in_threadpool(generate_latest, _Registries(*found))  # type: ignore[arg-type]
        return Response(body, media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})

    return [Route("/metrics", metrics, methods=["GET"])]
