"""The one wiring point: build printcore's services on real adapters from settings.

``bootstrap(settings, **overrides)`` opens the database (failing hard when it cannot be
reached; never falling back to SQLite), prepares the storage folders, and returns a
``Container``. Tests pass fakes as overrides (``clock=``, ``transport=``...).

Messages: every unit of work hands the outbox rows it committed to ``delivery.kick``:
with ``REDIS_URL`` set, that puts them on the Dramatiq queue for ``printcore worker``;
without, it wakes the web process's own delivery thread (``Container.start_delivery``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from adapters.delivery import InlineDelivery, Relay
from adapters.files import LocalFileStore, StagingArea
from adapters.health import ensure_storage_marker
from adapters.live import LiveHub, PostgresChannel, RedisChannel
from adapters.mail import (
    EmailSender,
    FileTransport,
    MailRenderer,
    MailTransport,
    SmtpSettings,
    SmtpTransport,
)
from adapters.passwords import Argon2Hasher
from adapters.printers_file import fingerprint, read_printers, write_starter
from adapters.queue_log import LogSender
from adapters.sql import SqlUnitOfWork, check_connection, database_kind, make_engine
from adapters.sql.migrate import upgrade_if_behind
from adapters.sql.tables import settings as settings_table
from adapters.tokens import ItsdangerousSigner
from entrypoints.settings import Settings
from printcore.memory import SystemClock
from printcore.outbox import MessageSender, OutboxService, RetryPolicy
from printcore.ports import Clock, PasswordHasher, TokenSigner
from printcore.queue.access_hours import AccessHours
from printcore.queue.service import QueuePolicy, QueueService
from printcore.requests.pricing import Pricing
from printcore.requests.service import PrintRequests
from printcore.staff import StaffDirectory

if TYPE_CHECKING:  # imported when REDIS_URL is set (dramatiq and redis cost ~50 ms)
    from adapters.delivery.broker import OutboxBroker

__all__ = ["Container", "bootstrap"]


@attrs.define
class Container:
    settings: Settings
    engine: Engine
    files: LocalFileStore
    staging: StagingArea
    signer: TokenSigner
    clock: Clock
    requests: PrintRequests
    staff: StaffDirectory
    queue: QueueService
    outbox: OutboxService
    email_sender: EmailSender
    inline: InlineDelivery | None = None
    broker: OutboxBroker | None = None
    live: LiveHub | None = None

    @property
    def database_kind(self) -> str:
        return database_kind(self.engine)

    def start_delivery(self) -> None:
        """Start delivering from the outbox in this process (the embedded default, no
        Redis); with Redis, ``printcore worker`` delivers and this does nothing."""
        if self.inline is not None:
            self.inline.start()
            self.inline.kick()

    def close(self) -> None:
        if self.live is not None:
            self.live.close()
        if self.inline is not None:
            self.inline.stop()
        if self.broker is not None:
            self.broker.close()
        self.engine.dispose()


def mail_transport(settings: Settings) -> MailTransport:
    """SMTP or ``.eml`` files, as ``PRINTCORE_MAIL_BACKEND`` says."""
    if settings.mail_backend == "smtp":
        assert settings.smtp_host is not None  # load_settings checked it
        return SmtpTransport(SmtpSettings(
            host=settings.smtp_host, port=settings.smtp_port,
            username=settings.smtp_username, password=settings.smtp_password,
            tls=settings.smtp_tls, timeout=float(settings.smtp_timeout_seconds),
        ))
    return FileTransport(settings.mail_dir)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base=timedelta(seconds=settings.outbox_retry_seconds),
        max_attempts=settings.outbox_max_attempts,
        lease=timedelta(seconds=settings.outbox_lease_seconds),
        relay_grace=timedelta(seconds=settings.outbox_lease_seconds),
    )


def live_channel(settings: Settings, engine: Engine) -> PostgresChannel | RedisChannel | None:
    """How committed changes reach the other processes' live streams: Redis pub/sub when
    ``REDIS_URL`` is set, else PostgreSQL ``NOTIFY`` on PostgreSQL, else none (SQLite:
    one web process). Opens nothing until used."""
    if settings.redis_url:
        from adapters.web.throttle import Throttle

        return RedisChannel(settings.redis_url, Throttle.namespace_for(settings.secret_key))
    if engine.dialect.name == "postgresql":
        url = engine.url.set(drivername="postgresql")
        return PostgresChannel(url.render_as_string(hide_password=False))
    return None


def bootstrap(settings: Settings, *, migrate: bool = True, **overrides: Any) -> Container:
    """Raises ``printcore.errors.StorageError`` when the database cannot be reached."""
    if settings.database_url_is_default:
        settings.home.mkdir(parents=True, exist_ok=True)
    engine: Engine = overrides.get("engine") or make_engine(settings.database_url)
    check_connection(engine)
    if migrate:  # one SELECT when at the head; Alembic only when behind
        upgrade_if_behind(engine)
    files = LocalFileStore(settings.storage_root)
    files.prepare()
    ensure_storage_marker(engine, files.root)  # .printcore-storage, once (adapters.health)
    staging = StagingArea(files.staging_dir)
    clock: Clock = overrides.get("clock") or SystemClock()
    signer: TokenSigner = overrides.get("signer") or ItsdangerousSigner(settings.secret_key)
    renderer = MailRenderer(
        settings.base_url, settings.lab_name, settings.mail_from, settings.timezone,
        lab_address=settings.lab_address, pickup_hours=settings.pickup_hours,
        reply_to=settings.reply_to,
    )
    transport: MailTransport = overrides.get("transport") or mail_transport(settings)
    email_sender = EmailSender(renderer, transport)
    hasher: PasswordHasher = overrides.get("hasher") or Argon2Hasher()
    kick: list[Callable[[Sequence[int]], None]] = []  # filled below, once outbox exists

    def after_commit(message_ids: Sequence[int]) -> None:
        for hook in kick:
            hook(message_ids)

    live = LiveHub(live_channel(settings, engine))

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, after_commit=after_commit, after_change=live.notify)

    senders: dict[str, MessageSender] = {"email": email_sender}
    if not settings.discord_token:  # no bot: queue notices go to the log
        senders["discord"] = LogSender()
    outbox = OutboxService(uow=uow, clock=clock, senders=senders,
                           policy=retry_policy(settings))
    inline: InlineDelivery | None = None
    broker: OutboxBroker | None = None
    if settings.redis_url:
        from adapters.delivery.broker import OutboxBroker

        broker = OutboxBroker(settings.redis_url)
        kick.append(Relay(outbox, broker.enqueue).kick)
    else:
        inline = InlineDelivery(outbox)
        kick.append(inline.kick)

    requests = PrintRequests(
        uow=uow,
        files=files,
        signer=signer,
        clock=clock,
        pricing=Pricing(
            filament_cents_per_gram=settings.filament_cents_per_gram,
            resin_cents_per_gram=settings.resin_cents_per_gram,
            minimum_cents=settings.minimum_cents,
            pickup_policy=settings.pickup_charge,
        ),
        confirmation_ttl=timedelta(days=settings.confirmation_days),
        lock_ttl=timedelta(seconds=settings.lock_seconds),
        reminder_lead=timedelta(hours=settings.confirmation_reminder_hours),
    )
    staff = StaffDirectory(uow=uow, hasher=hasher, clock=clock)
    if settings.staff_password and not staff.has_password():
        staff.set_password(settings.staff_password)
    queue = build_queue(settings, uow, clock, engine=engine)
    return Container(
        settings=settings, engine=engine, files=files, staging=staging, signer=signer,
        clock=clock, requests=requests, staff=staff, queue=queue, outbox=outbox,
        email_sender=email_sender, inline=inline, broker=broker, live=live,
    )


#: The ``settings`` row holding the printers file's fingerprint at its last sync.
PRINTERS_SYNCED_KEY = "printers_file_synced"


def _synced_fingerprint(engine: Engine) -> str | None:
    """The fingerprint stored at the last sync, or None (none yet, or unreadable)."""
    try:
        with engine.connect() as conn:
            try:
                return conn.execute(select(settings_table.c.value).where(
                    settings_table.c.key == PRINTERS_SYNCED_KEY)).scalar_one_or_none()
            finally:
                conn.rollback()
    except SQLAlchemyError:
        return None


def _store_fingerprint(engine: Engine, value: str) -> None:
    """Remember ``value`` as synced; a failure only means the next start syncs again."""
    try:
        with engine.begin() as conn:
            done = conn.execute(update(settings_table).where(
                settings_table.c.key == PRINTERS_SYNCED_KEY).values(value=value)).rowcount
            if not done:
                conn.execute(insert(settings_table).values(key=PRINTERS_SYNCED_KEY,
                                                           value=value))
    except SQLAlchemyError:  # e.g. another process inserted the row just now
        pass


def build_queue(settings: Settings, uow: Any, clock: Clock,
                sync: bool = True, engine: Engine | None = None) -> QueueService:
    """The queue service on ``settings``; syncs the printers file into the database.

    With no printers file at the default place (``$PRINTCORE_HOME/printers.yaml``) a
    starter file with three X1C is written first. With ``engine``, the sync is skipped
    when the file's fingerprint (path, size, mtime, SHA-256; ``adapters.printers_file``)
    equals the one stored in the ``settings`` table after the last sync, and stored
    after each sync. Raises PrintersFileError (a ValueError) for a missing or bad file
    elsewhere (a bad file is never recorded as synced, so it is reported at every start).
    """
    queue = QueueService(
        uow=uow,
        clock=clock,
        access=AccessHours.parse(settings.access_hours, settings.timezone),
        policy=QueuePolicy(
            claim_window=timedelta(minutes=settings.claim_window_minutes),
            start_window=timedelta(minutes=settings.start_window_minutes),
            notdone_default=timedelta(minutes=settings.notdone_default_minutes),
            max_open_tickets=settings.max_open_tickets,
        ),
    )
    if sync:
        if settings.printers_file == settings.home / "printers.yaml":
            write_starter(settings.printers_file)
        seen = fingerprint(settings.printers_file) if engine is not None else None
        if seen is not None and engine is not None and _synced_fingerprint(engine) == seen:
            return queue  # unchanged since its last sync into this database
        printers = read_printers(settings.printers_file)
        try:
            queue.sync_printers(printers)
        except IntegrityError:  # another process added the same printer just now
            queue.sync_printers(printers)
        if seen is not None and engine is not None:
            _store_fingerprint(engine, seen)
    return queue
