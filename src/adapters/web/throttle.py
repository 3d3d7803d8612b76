"""Throttling of the two doors open to anyone: the staff login and print-request submission.

Counts are kept by the ``limits`` library with a moving window: in memory on the embedded
default (one web process), in Redis when ``REDIS_URL`` is set, so every web process of the
lab shares them.

* **Failed logins**, per client address and per workstation name: ``n`` per minute
  (``PRINTCORE_LOGIN_FAILURES_PER_MINUTE``, default 5), then the lockout grows tenfold
  each time the count doubles: ``2n`` per 10 minutes, ``4n`` per 100 minutes, ``8n`` per
  1,000 minutes. While locked out even the right password is refused.
* **Submissions**, per client address and per email address: ``PRINTCORE_SUBMISSIONS_PER_HOUR``
  (default 10) in any hour.
* **"Submission received" emails**, for the whole lab: ``PRINTCORE_SUBMISSION_MAIL_PER_HOUR``
  (default 500); past it, submissions wait rather than flood the mail server.

Over a limit the check raises ``RateLimitedError`` with the seconds to wait; the web
adapter answers 429 with ``Retry-After``. When Redis cannot be reached the checks let the
request through (logged): throttling must not take the lab down.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

import attrs
from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from printcore.errors import RateLimitedError

__all__ = ["Limits", "Throttle", "wait_text"]

log = logging.getLogger("printcore.throttle")


@attrs.frozen
class Limits:
    """The configured limits (0 turns one off)."""

    login_failures_per_minute: int = 5
    submissions_per_hour: int = 10
    submission_mail_per_hour: int = 500


def wait_text(seconds: int) -> str:
    """``42`` → ``42 seconds``; ``61`` → ``2 minutes``; ``7200`` → ``2 hours``."""
    if seconds < 60:
        return f"{seconds} second" + ("" if seconds == 1 else "s")
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return f"{minutes} minute" + ("" if minutes == 1 else "s")
    hours = math.ceil(minutes / 60)
    return f"{hours} hours"


class Throttle:
    """``storage_uri``: ``memory://`` or a ``redis://`` URL; ``namespace`` keeps one lab's
    counts apart from another's on a shared Redis."""

    def __init__(self, limits: Limits, storage_uri: str = "memory://",
                 namespace: str = "printcore") -> None:
        self.limits = limits
        options = {} if storage_uri.startswith("memory") else {"key_prefix": namespace}
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        n = limits.login_failures_per_minute
        self._login: list[RateLimitItem] = [] if n <= 0 else [
            RateLimitItemPerMinute(n),
            RateLimitItemPerMinute(2 * n, 10),
            RateLimitItemPerMinute(4 * n, 100),
            RateLimitItemPerMinute(8 * n, 1000),
        ]
        s = limits.submissions_per_hour
        self._submissions: list[RateLimitItem] = [RateLimitItemPerHour(s)] if s > 0 else []
        m = limits.submission_mail_per_hour
        self._mail: list[RateLimitItem] = [RateLimitItemPerHour(m)] if m > 0 else []

    @staticmethod
    def namespace_for(secret_key: str) -> str:
        """A Redis key prefix derived from the lab's secret key (not the key itself)."""
        return "printcore:" + hashlib.sha256(secret_key.encode()).hexdigest()[:12]

    # -- the checks ------------------------------------------------------------------

    def _wait(self, items: list[RateLimitItem], *keys: str) -> int:
        """Seconds until every (item, key) allows one more hit; 0 when all do now."""
        wait = 0.0
        now = time.time()
        try:
            for item in items:
                for key in keys:
                    if not self._limiter.test(item, key):
                        stats = self._limiter.get_window_stats(item, key)
                        wait = max(wait, stats.reset_time - now, 1.0)
        except Exception as err:  # Redis down: let the request through
            log.warning("rate limit check skipped: %s", err)
            return 0
        return math.ceil(wait)

    def _hit(self, items: list[RateLimitItem], *keys: str) -> None:
        try:
            for item in items:
                for key in keys:
                    self._limiter.hit(item, key)
        except Exception as err:
            log.warning("rate limit not counted: %s", err)

    def check_login(self, client: str, workstation: str) -> None:
        """Raises RateLimitedError while the address or the workstation name is locked out."""
        wait = self._wait(self._login, f"login:ip:{client}", f"login:ws:{workstation.lower()}")
        if wait:
            raise RateLimitedError(
                f"Too many wrong passwords from this computer; logging in is locked for "
                f"{wait_text(wait)}. Try again then, or ask another staff member.", wait)

    def login_failed(self, client: str, workstation: str) -> None:
        self._hit(self._login, f"login:ip:{client}", f"login:ws:{workstation.lower()}")

    def check_submission(self, client: str, email: str | None = None) -> None:
        """Raises RateLimitedError when this address (or email address) has sent its
        hourly number of print requests, or the lab its hourly number of emails."""
        keys = [f"submit:ip:{client}"] + ([f"submit:email:{email.lower()}"] if email else [])
        wait = self._wait(self._submissions, *keys)
        if wait:
            n = self.limits.submissions_per_hour
            raise RateLimitedError(
                f"You have sent {n} print request{'' if n == 1 else 's'} in the "
                f"last hour, the most the lab takes from one person. Try again in "
                f"{wait_text(wait)}; nothing was saved from this one.", wait)
        wait = self._wait(self._mail, "mail:submitted")
        if wait:
            raise RateLimitedError(
                "The lab is receiving more print requests than it can confirm by email "
                f"right now. Try again in {wait_text(wait)}; nothing was saved from this "
                "one.", wait)

    def submitted(self, client: str, email: str) -> None:
        self._hit(self._submissions, f"submit:ip:{client}", f"submit:email:{email.lower()}")
        self._hit(self._mail, "mail:submitted")
