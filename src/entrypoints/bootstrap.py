"""The one wiring point: build printcore's services on real adapters from settings.

``bootstrap(settings, **overrides)`` opens the database (failing hard when it cannot be
reached; never falling back to SQLite), prepares the storage folders, and returns a
``Container``. Tests pass fakes as overrides (``mailer=``, ``clock=``...).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from adapters.files import LocalFileStore, StagingArea
from adapters.mail import FileMailer, MailRenderer
from adapters.passwords import Argon2Hasher
from adapters.printers_file import read_printers, write_starter
from adapters.queue_log import LogNotifier
from adapters.sql import SqlUnitOfWork, check_connection, database_kind, make_engine, upgrade
from adapters.tokens import ItsdangerousSigner
from entrypoints.settings import Settings
from printcore.access_hours import AccessHours
from printcore.memory import SystemClock
from printcore.ports import Clock, Mailer, PasswordHasher, TokenSigner
from printcore.pricing import Pricing
from printcore.queue.ports import QueueNotifier
from printcore.queue.service import QueuePolicy, QueueService
from printcore.services import PrintRequests
from printcore.staff import StaffDirectory

__all__ = ["Container", "bootstrap"]


@attrs.define
class Container:
    settings: Settings
    engine: Engine
    files: LocalFileStore
    staging: StagingArea
    signer: TokenSigner
    mailer: Mailer
    clock: Clock
    requests: PrintRequests
    staff: StaffDirectory
    queue: QueueService

    @property
    def database_kind(self) -> str:
        return database_kind(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def bootstrap(settings: Settings, *, migrate: bool = True, **overrides: Any) -> Container:
    """Raises ``printcore.errors.StorageError`` when the database cannot be reached."""
    if settings.database_url_is_default:
        settings.home.mkdir(parents=True, exist_ok=True)
    engine: Engine = overrides.get("engine") or make_engine(settings.database_url)
    check_connection(engine)
    if migrate:
        upgrade(engine)
    files = LocalFileStore(settings.storage_root)
    files.prepare()
    staging = StagingArea(files.staging_dir)
    clock: Clock = overrides.get("clock") or SystemClock()
    signer: TokenSigner = overrides.get("signer") or ItsdangerousSigner(settings.secret_key)
    mailer: Mailer = overrides.get("mailer") or FileMailer(
        settings.mail_dir,
        MailRenderer(settings.base_url, settings.lab_name, settings.mail_from, settings.timezone),
    )
    hasher: PasswordHasher = overrides.get("hasher") or Argon2Hasher()

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    requests = PrintRequests(
        uow=uow,
        files=files,
        mailer=mailer,
        signer=signer,
        clock=clock,
        pricing=Pricing(
            filament_cents_per_gram=settings.filament_cents_per_gram,
            resin_cents_per_gram=settings.resin_cents_per_gram,
            minimum_cents=settings.minimum_cents,
        ),
        confirmation_ttl=timedelta(days=settings.confirmation_days),
    )
    staff = StaffDirectory(uow=uow, hasher=hasher, clock=clock)
    if settings.staff_password and not staff.has_password():
        staff.set_password(settings.staff_password)
    queue = build_queue(settings, uow, clock, overrides.get("notifier") or LogNotifier())
    return Container(
        settings=settings, engine=engine, files=files, staging=staging, signer=signer,
        mailer=mailer, clock=clock, requests=requests, staff=staff, queue=queue,
    )


def build_queue(settings: Settings, uow: Any, clock: Clock, notifier: QueueNotifier,
                sync: bool = True) -> QueueService:
    """The queue service on ``settings``; syncs the printers file into the database.

    With no printers file at the default place (``$PRINTCORE_HOME/printers.yaml``) a
    starter file with three X1C is written first. Raises PrintersFileError (a
    ValueError) for a missing or bad file elsewhere.
    """
    queue = QueueService(
        uow=uow,
        clock=clock,
        notifier=notifier,
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
        printers = read_printers(settings.printers_file)
        try:
            queue.sync_printers(printers)
        except IntegrityError:  # another process added the same printer just now
            queue.sync_printers(printers)
    return queue
