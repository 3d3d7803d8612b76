"""Settings: read once at start from the environment (and an optional ``.env``).

With nothing set, printcore runs on its embedded default: SQLite in
``$PRINTCORE_HOME/printcore.db``, storage in ``$PRINTCORE_HOME/storage``, emails written
as ``.eml`` files to ``$PRINTCORE_HOME/mail``; ``PRINTCORE_HOME`` defaults to ``./var``.
Reading settings never opens a connection.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from dotenv import dotenv_values

from printcore.requests.details import DEFAULT_COLORS
from printcore.text import text_problem

__all__ = ["Settings", "SettingsError", "load_settings"]


class SettingsError(Exception):
    """A setting has a value printcore cannot use; the message names it and says why."""


@attrs.frozen
class Settings:
    home: Path
    database_url: str
    database_url_is_default: bool
    storage_root: Path
    mail_dir: Path
    mail_from: str
    secret_key: str
    staff_password: str | None
    timezone: str
    base_url: str
    host: str
    port: int
    max_upload_bytes: int
    filament_cents_per_gram: Decimal
    resin_cents_per_gram: Decimal
    minimum_cents: int
    confirmation_days: int
    lab_name: str
    https_only: bool
    # The self-service queue (issue 3).
    printers_file: Path = Path("printers.yaml")
    access_hours: str = "always"
    claim_window_minutes: int = 10
    start_window_minutes: int = 15
    notdone_default_minutes: int = 30
    max_open_tickets: int = 1
    sweep_seconds: int = 15
    inspect_workers: int = 2  # model/sliced-file checking processes of the web app
    #: Uploads waiting to be checked (queued + being checked) past which the web app
    #: answers new uploads 503 + Retry-After before reading them; 0 = no limit.
    inspect_queue_max: int = 40
    discord_token: str | None = None
    discord_guild_id: int | None = None
    discord_channel_id: int | None = None
    # Messages (issue 4): the outbox, Redis/Dramatiq and SMTP.
    redis_url: str | None = None
    mail_backend: str = "file"
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_tls: str = "starttls"
    smtp_timeout_seconds: int = 30
    reply_to: str | None = None
    lab_address: str = ""
    pickup_hours: str = ""
    outbox_retry_seconds: int = 30
    outbox_max_attempts: int = 12
    outbox_lease_seconds: int = 120
    worker_threads: int = 8
    # The slicer opener (issue 5): signs print3d:// links; None: no links.
    opener_secret: str | None = None
    # Abuse limits (issue 10); 0 turns one off.
    base_url_is_default: bool = False
    login_failures_per_minute: int = 5
    submissions_per_hour: int = 10
    submission_mail_per_hour: int = 500
    trusted_proxies: tuple[str, ...] = ()
    # Reminder before a confirmation link expires (issue 12): hours before; 0: none.
    confirmation_reminder_hours: int = 48
    reminder_check_seconds: int = 300
    # Soft locks on jobs (issue 12): seconds a lock lasts without a heartbeat.
    lock_seconds: int = 120
    # Dashboard card colours by age in their state (issue 12): hours.
    age_amber_hours: float = 24.0
    age_red_hours: float = 72.0
    # What pickup charges (issue 12): weighed (default), quote or lower (docs/operations.md).
    pickup_charge: str = "weighed"
    # The colours offered on the forms (issue 12, staff notes and corrections).
    colors: tuple[str, ...] = DEFAULT_COLORS
    # Running the lab without a shell (issue 13).
    #: Where the admin's "email the payments export" goes by default; None: typed each time.
    finance_email: str | None = None
    #: The readiness check fails when the oldest waiting message is older than this.
    outbox_alert_seconds: int = 3600
    #: The readiness check fails when the storage root has less free space than this.
    storage_min_free_mb: int = 200
    #: A worker's or bot's heartbeat older than this fails the readiness check.
    heartbeat_max_age_seconds: int = 120

    def serving_at(self, host: str, port: int) -> Settings:
        """These settings for a server listening on ``host:port``: when
        ``PRINTCORE_BASE_URL`` is not set, emailed links follow that address."""
        base_url = f"http://{host}:{port}" if self.base_url_is_default else self.base_url
        return attrs.evolve(self, host=host, port=port, base_url=base_url)

    def describe(self) -> dict[str, str]:
        """The effective settings as text, secrets masked (for ``printcore config``)."""
        out: dict[str, str] = {}
        for field in attrs.fields(Settings):
            value = getattr(self, field.name)
            if field.name in ("secret_key", "staff_password", "discord_token", "smtp_password",
                              "opener_secret"):
                value = "(not set)" if not value else "********"
            elif field.name in ("database_url", "redis_url") and value:
                value = _mask_url(str(value))
            out[field.name] = str(value)
        return out

    @property
    def sqlite_path(self) -> Path | None:
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url[len("sqlite:///") :])
        return None


def _mask_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":********@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _int(env: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{key}={raw!r} is not a whole number.") from None
    if not low <= value <= high:
        raise SettingsError(f"{key}={value} is outside {low}..{high}.")
    return value


def _decimal(env: Mapping[str, str], key: str, default: str) -> Decimal:
    raw = env.get(key) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise SettingsError(f"{key}={raw!r} is not a number (cents per gram, e.g. 10).") from None
    if not value.is_finite() or value < 0:
        raise SettingsError(f"{key}={raw!r} must be zero or more cents per gram.")
    return value


def _pickup_charge(env: Mapping[str, str]) -> str:
    """``PRINTCORE_PICKUP_CHARGE``: ``weighed`` (default; above the quote only with an
    override reason), ``quote`` or ``lower`` (:meth:`printcore.requests.pricing.Pricing.pickup_charge`)."""
    raw = (env.get("PRINTCORE_PICKUP_CHARGE") or "weighed").strip().lower()
    if raw not in ("weighed", "quote", "lower"):
        raise SettingsError(f"PRINTCORE_PICKUP_CHARGE={raw!r}: use weighed, quote or lower.")
    return raw


def _secret(home: Path, env: Mapping[str, str]) -> str:
    if env.get("PRINTCORE_SECRET_KEY"):
        return env["PRINTCORE_SECRET_KEY"]
    # Embedded default: a random key kept beside the database, made on first start.
    key_file = home / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _trusted_proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    """``PRINTCORE_TRUSTED_PROXIES``: addresses or networks (``10.0.0.0/8``), comma
    separated, or ``*``; only these peers' ``X-Forwarded-For`` is believed."""
    import ipaddress

    raw = (env.get("PRINTCORE_TRUSTED_PROXIES") or "").strip()
    if not raw:
        return ()
    if raw == "*":
        return ("*",)
    found = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise SettingsError(
                f"PRINTCORE_TRUSTED_PROXIES: {part!r} is not an IP address or network "
                "(e.g. 127.0.0.1, 10.0.0.0/8).") from None
        found.append(part)
    return tuple(found)


def _colors(env: Mapping[str, str]) -> tuple[str, ...]:
    """``PRINTCORE_COLORS``: the colours the lab offers, comma-separated, in the order the
    forms list them (default :data:`printcore.requests.details.DEFAULT_COLORS`). Each is
    1-60 characters on one line; repeats (ignoring case) are dropped; ``other`` is
    always offered besides them (free text), so it cannot be listed."""
    raw = (env.get("PRINTCORE_COLORS") or "").strip()
    if not raw:
        return DEFAULT_COLORS
    colors: list[str] = []
    for part in (p.strip() for p in raw.split(",")):
        problem = text_problem(part) if part else "an empty entry (two commas in a row?)"
        if problem is None and len(part) > 60:
            problem = "longer than 60 characters"
        if problem is None and part.casefold() == "other":
            problem = "'other' is always offered; leave it out"
        if problem is not None:
            raise SettingsError(f"PRINTCORE_COLORS: {part!r}: {problem}")
        if part.casefold() not in {c.casefold() for c in colors}:
            colors.append(part)
    if len(colors) > 100:
        raise SettingsError("PRINTCORE_COLORS: at most 100 colours.")
    return tuple(colors)


def _age_thresholds(env: Mapping[str, str]) -> tuple[float, float]:
    """``PRINTCORE_AGE_AMBER_HOURS`` (default 24) and ``PRINTCORE_AGE_RED_HOURS`` (default
    72): hours a job may wait in its state before its dashboard card turns amber, red.
    Positive numbers, amber below red (:class:`printcore.requests.ages.AgeThresholds`)."""
    from printcore.errors import ValidationError
    from printcore.requests.ages import AgeThresholds

    hours: dict[str, float] = {}
    for key, default in (("PRINTCORE_AGE_AMBER_HOURS", 24.0), ("PRINTCORE_AGE_RED_HOURS", 72.0)):
        raw = (env.get(key) or "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise SettingsError(f"{key}={raw!r} is not a number of hours (e.g. 24).") from None
        if not math.isfinite(value) or value <= 0:
            raise SettingsError(f"{key}={raw!r} must be a positive number of hours.")
        hours[key] = value
    amber, red = hours["PRINTCORE_AGE_AMBER_HOURS"], hours["PRINTCORE_AGE_RED_HOURS"]
    try:
        AgeThresholds(amber, red)
    except ValidationError:
        raise SettingsError(
            f"PRINTCORE_AGE_AMBER_HOURS={amber:g} must be less than "
            f"PRINTCORE_AGE_RED_HOURS={red:g} (a card turns amber before it turns red)."
        ) from None
    return amber, red


def _reminders(env: Mapping[str, str]) -> dict[str, int]:
    """``PRINTCORE_CONFIRMATION_REMINDER_HOURS``: how many hours before a confirmation
    link expires the student gets a reminder (0: no reminders). It must be shorter than
    the link's lifetime (``PRINTCORE_CONFIRMATION_DAYS``), else the reminder would go out
    with the link itself; unset, it is 48 hours or half the lifetime, whichever is
    shorter. ``PRINTCORE_REMINDER_CHECK_SECONDS``: how often the web process (without
    Redis) or the worker looks for reminders to send (default 300)."""
    days = _int(env, "PRINTCORE_CONFIRMATION_DAYS", 7, 1, 365)
    lifetime = days * 24
    key = "PRINTCORE_CONFIRMATION_REMINDER_HOURS"
    if (env.get(key) or "").strip() == "":
        hours = min(48, lifetime // 2)
    else:
        raw = env[key].strip()
        try:
            hours = int(raw)
        except ValueError:
            raise SettingsError(f"{key}={raw!r} is not a whole number of hours (e.g. 48; "
                                "0 turns reminders off).") from None
        if hours < 0:
            raise SettingsError(f"{key}={hours}: use 0 (no reminders) or a number of hours.")
        if hours >= lifetime:
            raise SettingsError(
                f"{key}={hours} is not shorter than the confirmation link's lifetime "
                f"(PRINTCORE_CONFIRMATION_DAYS={days}, {lifetime} hours): the reminder would "
                f"go out with the link itself. Use 1 to {lifetime - 1}, or 0 for none.")
    return {
        "confirmation_reminder_hours": hours,
        "reminder_check_seconds": _int(env, "PRINTCORE_REMINDER_CHECK_SECONDS", 300, 1, 86400),
    }


def _snowflake(env: Mapping[str, str], key: str) -> int | None:
    raw = (env.get(key) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 15 <= len(raw) <= 20:
        raise SettingsError(f"{key}={raw!r} is not a Discord id (a number of 17-20 digits; "
                            "Discord: Developer Mode → right-click → Copy ID).")
    return int(raw)


def _access_hours(env: Mapping[str, str], timezone: str) -> str:
    from printcore.errors import ValidationError
    from printcore.queue.access_hours import AccessHours

    spec = env.get("PRINTCORE_ACCESS_HOURS") or "always"
    try:
        AccessHours.parse(spec, timezone, "PRINTCORE_ACCESS_HOURS")
    except ValidationError as exc:
        raise SettingsError(f"PRINTCORE_ACCESS_HOURS={spec!r}: {exc}") from None
    return spec


def _opener_secret(env: Mapping[str, str]) -> str | None:
    """PRINTCORE_OPENER_SECRET (at least 16 characters), or None when unset."""
    from entrypoints.opener.token import check_secret

    if not (env.get("PRINTCORE_OPENER_SECRET") or "").strip():
        return None
    try:
        return check_secret(env["PRINTCORE_OPENER_SECRET"], "PRINTCORE_OPENER_SECRET")
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _address(env: Mapping[str, str], key: str, default: str | None) -> str | None:
    """An email address setting (``lab@uni.edu`` or ``Fab Lab <lab@uni.edu>``), checked
    with email-validator (syntax only, no DNS)."""
    from email.utils import parseaddr

    from email_validator import EmailNotValidError, validate_email

    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    if any(c in raw for c in "\r\n\x00"):
        raise SettingsError(f"{key} must be one line.")
    _name, address = parseaddr(raw)
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SettingsError(f"{key}={raw!r} is not an email address: {exc}") from None
    return raw


def _mail(env: Mapping[str, str]) -> dict[str, object]:
    backend = (env.get("PRINTCORE_MAIL_BACKEND") or "file").strip().lower()
    if backend not in ("file", "smtp"):
        raise SettingsError(f"PRINTCORE_MAIL_BACKEND={backend!r}: use file or smtp.")
    tls = (env.get("SMTP_TLS") or "starttls").strip().lower()
    tls = {"true": "starttls", "yes": "starttls", "1": "starttls", "implicit": "ssl",
           "tls": "ssl", "false": "none", "no": "none", "0": "none"}.get(tls, tls)
    if tls not in ("starttls", "ssl", "none"):
        raise SettingsError(f"SMTP_TLS={tls!r}: use starttls (port 587), ssl (implicit "
                            "TLS, port 465) or none.")
    host = (env.get("SMTP_HOST") or "").strip() or None
    if backend == "smtp" and host is None:
        raise SettingsError("PRINTCORE_MAIL_BACKEND=smtp needs SMTP_HOST (e.g. "
                            "smtp.office365.com).")
    redis_url = (env.get("REDIS_URL") or "").strip() or None
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"REDIS_URL={redis_url!r}: use redis://host:6379/0.")
    return {
        "redis_url": redis_url,
        "mail_backend": backend,
        "smtp_host": host,
        "smtp_port": _int(env, "SMTP_PORT", 465 if tls == "ssl" else 587, 1, 65535),
        "smtp_username": (env.get("SMTP_USERNAME") or "").strip() or None,
        "smtp_password": env.get("SMTP_PASSWORD") or None,
        "smtp_tls": tls,
        "smtp_timeout_seconds": _int(env, "SMTP_TIMEOUT", 30, 1, 600),
        "reply_to": _address(env, "PRINTCORE_REPLY_TO", None),
        "lab_address": (env.get("PRINTCORE_LAB_ADDRESS") or "").strip(),
        "pickup_hours": (env.get("PRINTCORE_PICKUP_HOURS") or "").strip(),
        "outbox_retry_seconds": _int(env, "PRINTCORE_OUTBOX_RETRY_SECONDS", 30, 1, 86400),
        "outbox_max_attempts": _int(env, "PRINTCORE_OUTBOX_MAX_ATTEMPTS", 12, 1, 100),
        "outbox_lease_seconds": _int(env, "PRINTCORE_OUTBOX_LEASE_SECONDS", 120, 2, 86400),
        "worker_threads": _int(env, "PRINTCORE_WORKER_THREADS", 8, 1, 64),
    }


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Build settings from ``environ`` (default ``os.environ``) over an optional ``.env``.

    Raises SettingsError naming the first bad setting.
    """
    env: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    home = Path(env.get("PRINTCORE_HOME") or "var").resolve()
    default_db = f"sqlite:///{home / 'printcore.db'}"
    database_url = env.get("DATABASE_URL") or default_db
    timezone = env.get("PRINTCORE_TIMEZONE") or "America/Chicago"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"PRINTCORE_TIMEZONE={timezone!r} is not a time zone name (e.g. America/Chicago)."
        ) from None
    port = _int(env, "PRINTCORE_PORT", 8000, 0, 65535)
    host = env.get("PRINTCORE_HOST") or "127.0.0.1"
    base_url = (env.get("PRINTCORE_BASE_URL") or f"http://{host}:{port}").rstrip("/")
    limits = {
        "login_failures_per_minute": _int(env, "PRINTCORE_LOGIN_FAILURES_PER_MINUTE", 5, 0,
                                          1_000_000),
        "submissions_per_hour": _int(env, "PRINTCORE_SUBMISSIONS_PER_HOUR", 10, 0, 1_000_000),
        "submission_mail_per_hour": _int(env, "PRINTCORE_SUBMISSION_MAIL_PER_HOUR", 500, 0,
                                         1_000_000),
    }
    ages = _age_thresholds(env)  # (amber, red) hours
    return Settings(
        home=home,
        database_url=database_url,
        database_url_is_default=database_url == default_db,
        storage_root=Path(env.get("PRINTCORE_STORAGE") or home / "storage").resolve(),
        mail_dir=Path(env.get("PRINTCORE_MAIL_DIR") or home / "mail").resolve(),
        mail_from=_address(env, "SMTP_FROM", None) or _address(
            env, "PRINTCORE_MAIL_FROM", "printlab@localhost") or "printlab@localhost",
        secret_key=_secret(home, env),
        staff_password=env.get("PRINTCORE_STAFF_PASSWORD") or None,
        timezone=timezone,
        base_url=base_url,
        host=host,
        port=port,
        max_upload_bytes=_int(env, "PRINTCORE_MAX_UPLOAD_MB", 200, 1, 10_000) * 1_000_000,
        filament_cents_per_gram=_decimal(env, "PRINTCORE_FILAMENT_CENTS_PER_GRAM", "10"),
        resin_cents_per_gram=_decimal(env, "PRINTCORE_RESIN_CENTS_PER_GRAM", "20"),
        minimum_cents=_int(env, "PRINTCORE_MINIMUM_CENTS", 300, 0, 1_000_000),
        pickup_charge=_pickup_charge(env),
        confirmation_days=_int(env, "PRINTCORE_CONFIRMATION_DAYS", 7, 1, 365),
        lock_seconds=_int(env, "PRINTCORE_LOCK_SECONDS", 120, 30, 3600),
        lab_name=env.get("PRINTCORE_LAB_NAME") or "Fab Lab 3D printing",
        https_only=(env.get("PRINTCORE_HTTPS_ONLY") or "").lower() in ("1", "true", "yes"),
        printers_file=Path(env.get("PRINTCORE_PRINTERS_FILE") or home / "printers.yaml").resolve(),
        access_hours=_access_hours(env, timezone),
        claim_window_minutes=_int(env, "PRINTCORE_CLAIM_WINDOW_MINUTES", 10, 1, 24 * 60),
        start_window_minutes=_int(env, "PRINTCORE_START_WINDOW_MINUTES", 15, 1, 24 * 60),
        notdone_default_minutes=_int(env, "PRINTCORE_NOTDONE_MINUTES", 30, 1, 7 * 24 * 60),
        max_open_tickets=_int(env, "PRINTCORE_MAX_OPEN_TICKETS", 1, 1, 100),
        sweep_seconds=_int(env, "PRINTCORE_SWEEP_SECONDS", 15, 1, 3600),
        inspect_workers=_int(env, "PRINTCORE_INSPECT_WORKERS",
                             min(2, os.cpu_count() or 1), 1, 32),
        inspect_queue_max=_int(env, "PRINTCORE_INSPECT_QUEUE_MAX", 40, 0, 100_000),
        discord_token=(env.get("DISCORD_TOKEN") or "").strip() or None,
        discord_guild_id=_snowflake(env, "DISCORD_GUILD_ID"),
        discord_channel_id=_snowflake(env, "DISCORD_CHANNEL_ID"),
        opener_secret=_opener_secret(env),
        base_url_is_default=not env.get("PRINTCORE_BASE_URL"),
        trusted_proxies=_trusted_proxies(env),
        **_reminders(env),  # type: ignore[arg-type]
        age_amber_hours=ages[0],
        age_red_hours=ages[1],
        colors=_colors(env),
        finance_email=_address(env, "PRINTCORE_FINANCE_EMAIL", None),
        outbox_alert_seconds=_int(env, "PRINTCORE_OUTBOX_ALERT_SECONDS", 3600, 60, 30 * 86400),
        storage_min_free_mb=_int(env, "PRINTCORE_STORAGE_MIN_FREE_MB", 200, 0, 10_000_000),
        heartbeat_max_age_seconds=_int(env, "PRINTCORE_HEARTBEAT_MAX_AGE_SECONDS", 120, 10,
                                       86400),
        **limits,  # type: ignore[arg-type]
        **_mail(env),  # type: ignore[arg-type]
    )
