"""Throttling (adapters.web.throttle) on its two storages: memory (one web process) and
Redis (several web processes share the counts: two Throttle objects stand for two
processes). Time is real but windows are short enough only at their first tier, so the
tests check counts and the Retry-After figures, not waiting.

Tried: 5 wrong passwords then a 6th attempt (locked); the same from another workstation
name on the same address (locked by address) and from another address with the same
workstation name (locked by name); 10 submissions from one address, then one from a new
address with a used email; the lab-wide mail cap; limits set to 0 (off); Redis
unreachable (requests go through).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from _support import service_missing
from adapters.web.throttle import Limits, Throttle, wait_text
from printcore.errors import RateLimitedError

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest) -> Iterator:
    namespace = f"printcore-test-{uuid.uuid4().hex[:8]}"
    if request.param == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as err:
            service_missing(f"Redis at {REDIS_URL}: {err}")
        uri = REDIS_URL
    else:
        uri = "memory://"
    shared: dict[str, Throttle] = {}

    def build(limits: Limits | None = None, process: str = "web-1") -> Throttle:
        # Memory storage is per process: "another process" only shares counts on Redis.
        key = process if uri == REDIS_URL else "only"
        if key not in shared or uri == REDIS_URL:
            shared[key] = Throttle(limits or Limits(), uri, namespace)
        return shared[key]

    build.kind = request.param  # type: ignore[attr-defined]
    yield build
    if uri == REDIS_URL:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{namespace}*"):
            client.delete(key)


def test_five_failed_logins_lock_the_address_and_the_workstation(make) -> None:  # type: ignore[no-untyped-def]
    throttle = make()
    for _ in range(5):
        throttle.check_login("10.0.0.1", "Desk A")
        throttle.login_failed("10.0.0.1", "Desk A")
    with pytest.raises(RateLimitedError) as info:
        throttle.check_login("10.0.0.1", "Desk A")
    assert 1 <= info.value.retry_after <= 60
    assert "locked" in info.value.message
    with pytest.raises(RateLimitedError):  # another name, same address
        throttle.check_login("10.0.0.1", "Desk B")
    with pytest.raises(RateLimitedError):  # same name (any case), another address
        throttle.check_login("10.0.0.2", "desk a")
    throttle.check_login("10.0.0.3", "Desk C")  # others are not affected


def test_the_lockout_grows_with_more_failures(make) -> None:  # type: ignore[no-untyped-def]
    throttle = make(Limits(login_failures_per_minute=2))
    for _ in range(2):
        throttle.login_failed("10.0.0.9", "Desk")
    first = pytest.raises(RateLimitedError, throttle.check_login, "10.0.0.9", "Desk").value
    for _ in range(2):  # what a minute later would add: 4 in 10 minutes
        throttle.login_failed("10.0.0.9", "Desk")
    for _ in range(4):  # and then 8 in 100 minutes
        throttle.login_failed("10.0.0.9", "Desk")
    later = pytest.raises(RateLimitedError, throttle.check_login, "10.0.0.9", "Desk").value
    assert first.retry_after <= 60 < 600 < later.retry_after <= 6000


def test_submissions_per_address_and_per_email(make) -> None:  # type: ignore[no-untyped-def]
    throttle = make(Limits(submissions_per_hour=3))
    for n in range(3):
        throttle.check_submission("10.1.0.1", f"s{n}@uni.edu")
        throttle.submitted("10.1.0.1", f"s{n}@uni.edu")
    with pytest.raises(RateLimitedError) as info:
        throttle.check_submission("10.1.0.1")
    assert 3000 < info.value.retry_after <= 3600 and "nothing was saved" in info.value.message
    for n in range(3):
        throttle.submitted(f"10.2.0.{n}", "busy@uni.edu")
    throttle.check_submission("10.3.0.1")  # a new address is fine before the email is known
    with pytest.raises(RateLimitedError):
        throttle.check_submission("10.3.0.1", "BUSY@uni.edu")


def test_the_lab_wide_mail_cap(make) -> None:  # type: ignore[no-untyped-def]
    throttle = make(Limits(submissions_per_hour=100, submission_mail_per_hour=4))
    for n in range(4):
        throttle.submitted(f"10.4.0.{n}", f"s{n}@uni.edu")
    with pytest.raises(RateLimitedError, match="more print requests"):
        throttle.check_submission("10.4.1.1", "new@uni.edu")


def test_limits_of_zero_are_off(make) -> None:  # type: ignore[no-untyped-def]
    throttle = make(Limits(0, 0, 0))
    for _ in range(50):
        throttle.login_failed("10.5.0.1", "Desk")
        throttle.submitted("10.5.0.1", "a@uni.edu")
    throttle.check_login("10.5.0.1", "Desk")
    throttle.check_submission("10.5.0.1", "a@uni.edu")


def test_processes_share_counts_on_redis_only(make) -> None:  # type: ignore[no-untyped-def]
    one, two = make(process="web-1"), make(process="web-2")
    for _ in range(5):
        one.login_failed("10.6.0.1", "Desk")
    if make.kind == "redis":
        with pytest.raises(RateLimitedError):
            two.check_login("10.6.0.1", "Desk")
    else:
        assert one is two  # memory: one process, one count
        with pytest.raises(RateLimitedError):
            two.check_login("10.6.0.1", "Desk")


def test_an_unreachable_redis_lets_requests_through() -> None:
    throttle = Throttle(Limits(login_failures_per_minute=1), "redis://127.0.0.1:1/0",
                        "printcore-test-down")
    throttle.login_failed("10.7.0.1", "Desk")
    throttle.login_failed("10.7.0.1", "Desk")
    throttle.check_login("10.7.0.1", "Desk")  # no exception: fail open, logged


@pytest.mark.parametrize(("seconds", "text"), [(1, "1 second"), (42, "42 seconds"),
                                               (60, "1 minute"), (61, "2 minutes"),
                                               (7200, "2 hours")])
def test_wait_text(seconds: int, text: str) -> None:
    assert wait_text(seconds) == text
