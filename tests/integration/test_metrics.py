"""``GET /metrics`` (:mod:`adapters.metrics`): scraped after real requests to the wired
app (Starlette TestClient) on SQLite and PostgreSQL, parsed with
``prometheus_client.parser``.

Tried: many different job ids and unknown paths (each must fold into one route template
or ``(unmatched)``, never a raw path as a label); a 405 (wrong method) and a redirect;
two apps in one process (neither sees the other's requests); queue tickets in several
states; the bot's and the cron sweeper's sweep durations carried in their heartbeats; a
garbled sweep figure in a beat (left out, the scrape still answers); the database gone
(``printcore_up`` 0, the request counters still served).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, func, select

from adapters.heartbeat import DatabaseHeartbeats, SweepTimings
from adapters.metrics import metrics_registry
from adapters.sql.tables import tickets


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    name = "pg_engine" if request.param == "postgresql" else "sqlite_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


class Lab:
    def __init__(self, client: Any, container: Any) -> None:
        self.client, self.container = client, container

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        r = self.client.get("/metrics")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(r.text) for s in family.samples}


def _lab(engine: Engine, home: Path) -> tuple[Lab, Any]:
    from starlette.testclient import TestClient

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    env = {"PRINTCORE_HOME": str(home), "PRINTCORE_SECRET_KEY": "metrics-secret",
           "PRINTCORE_STAFF_PASSWORD": "metrics-password",
           "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    container = bootstrap(load_settings(env, env_file=None), engine=engine)
    app = app_from_container(container, isolated_inspection=True)
    return Lab(TestClient(app, base_url="http://127.0.0.1"), container), app


@pytest.fixture
def labs(db_engine: Engine, tmp_path: Path) -> Iterator[tuple[Lab, Lab]]:
    first, app1 = _lab(db_engine, tmp_path / "one")
    second, app2 = _lab(db_engine, tmp_path / "two")
    try:
        yield first, second
    finally:
        for lab, app in ((first, app1), (second, app2)):
            lab.client.close()
            app.state.ctx.inspector.close()
            lab.container.close()


def _requests(samples: dict[Any, float], route: str, status: str, method: str = "GET"
              ) -> float:
    key = ("printcore_http_requests_total",
           (("method", method), ("route", route), ("status", status)))
    return samples.get(key, 0.0)


def _http_labels(samples: dict[Any, float]) -> set[str]:
    return {dict(labels)["route"] for (name, labels) in samples
            if name.startswith("printcore_http_")}


def test_requests_by_route_template(labs: tuple[Lab, Lab]) -> None:
    one, two = labs
    for _ in range(3):
        assert one.client.get("/api/v1/health").status_code == 200
    for job_id in range(100, 140):  # 40 ids, one template
        r = one.client.get(f"/staff/jobs/{job_id}", follow_redirects=False)
        assert r.status_code in (302, 303, 307), r.status_code
    for n in range(7):
        assert one.client.get(f"/no-such-page-{n}").status_code == 404
    assert one.client.post("/metrics").status_code == 405
    assert one.client.get("/static/printcore.css").status_code == 200

    samples = one.scrape()
    assert _requests(samples, "/api/v1/health", "200") == 3
    redirected = [labels for (name, labels) in samples
                  if name == "printcore_http_requests_total"
                  and dict(labels)["route"] == "/staff/jobs/{job_id}"]
    assert len(redirected) == 1
    assert samples[("printcore_http_requests_total", redirected[0])] == 40
    assert _requests(samples, "(unmatched)", "404") == 7
    assert _requests(samples, "/metrics", "405", method="POST") == 1
    assert _requests(samples, "/static/{path}", "200") == 1
    routes = _http_labels(samples)
    assert not [r for r in routes if "no-such-page" in r or any(c.isdigit() for c in r)
                if r != "/api/v1/health"], routes
    # The histogram counted the same answers (the scrape itself comes after).
    count = samples[("printcore_http_request_duration_seconds_count",
                     (("method", "GET"), ("route", "/api/v1/health")))]
    assert count == 3
    assert samples[("printcore_http_request_duration_seconds_sum",
                    (("method", "GET"), ("route", "/api/v1/health")))] > 0

    # The other app counted none of that: its first scrape has no request figures, its
    # second only the first scrape.
    assert _http_labels(two.scrape()) == set()
    other = two.scrape()
    assert _http_labels(other) == {"/metrics"}
    assert _requests(other, "/metrics", "200") == 1
    assert _requests(one.scrape(), "/metrics", "200") == 1  # and the first app its own


def test_queue_length_and_sweeps(labs: tuple[Lab, Lab], db_engine: Engine) -> None:
    lab, _ = labs
    queue = lab.container.queue
    queue.join("m1", "Member One", "benchy", timedelta(hours=1))
    queue.join("m2", "Member Two", "bracket", timedelta(minutes=30))
    queue.join("m3", "Member Three", "vase", timedelta(minutes=45))
    queue.cancel("m3")
    timings = SweepTimings()
    for seconds in (0.004, 0.03, 0.2):
        timings.observe(seconds)
    beats = DatabaseHeartbeats(db_engine)
    beats.beat("bot", {"sweep": timings.snapshot()})
    beats.beat("sweeper", {"sweep": {"buckets": "garbled"}})

    samples = lab.scrape()
    assert samples[("printcore_queue_length", ())] == 2
    with db_engine.connect() as conn:  # the head may have been offered a printer at once
        in_table = dict(conn.execute(select(tickets.c.status, func.count())
                                     .group_by(tickets.c.status)).all())
    assert in_table.get("cancelled") == 1
    assert sum(in_table.get(s, 0) for s in ("queued", "offered")) == 2
    for state in ("queued", "offered", "claimed", "printing"):
        assert samples[("printcore_queue_tickets", (("state", state),))] == in_table.get(state, 0)
    bot = (("process", "bot"),)
    assert samples[("printcore_sweep_duration_seconds_count", bot)] == 3
    assert samples[("printcore_sweep_duration_seconds_sum", bot)] == pytest.approx(0.234)
    assert samples[("printcore_sweep_duration_seconds_bucket",
                    (("le", "0.005"), ("process", "bot")))] == 1
    assert samples[("printcore_sweep_duration_seconds_bucket",
                    (("le", "0.05"), ("process", "bot")))] == 2
    assert samples[("printcore_sweep_duration_seconds_bucket",
                    (("le", "+Inf"), ("process", "bot")))] == 3
    assert ("printcore_sweep_duration_seconds_count", (("process", "sweeper"),)) not in samples
    assert 0 <= samples[("printcore_heartbeat_age_seconds", bot)] < 60
    assert ("printcore_heartbeat_age_seconds", (("process", "sweeper"),)) in samples


def test_database_down(labs: tuple[Lab, Lab], tmp_path: Path) -> None:
    lab, _ = labs
    lab.client.get("/api/v1/health")
    gone = create_engine(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    lab.client.app.state.metrics = metrics_registry(gone)
    samples = lab.scrape()
    assert samples[("printcore_up", ())] == 0
    assert ("printcore_queue_length", ()) not in samples
    assert _requests(samples, "/api/v1/health", "200") == 1
