"""The database schema as SQLAlchemy Core tables (no ORM: rows are mapped by ``convert``).

Tables: ``jobs`` (one row per print request, with its files, rejection reasons and
payments as JSON), ``events`` (the append-only log; deliberately no foreign key to
``jobs``, so a deleted job keeps its history), ``staff`` and ``settings``; for the
self-service queue ``printers`` (one row per configured printer, with the holder and the
claim/start deadlines the sweep reads) and ``tickets`` (members' places, FIFO by
``queue_key``); ``staff_sessions`` (one row per workstation login, ended by logout or
a password change); ``outbox`` (every outbound email and Discord notice, written in the
transaction of the change that causes it, with its delivery state). The Alembic
migrations in ``adapters/sql/migrations/versions`` create the same schema by hand; a test
compares them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from adapters.sql.types import UTCDateTime

__all__ = [
    "NAMING_CONVENTION", "events", "job_locks", "jobs", "metadata", "outbox", "printers",
    "settings", "staff", "staff_sessions", "tickets",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

jobs = Table(
    "jobs",
    metadata,
    # AUTOINCREMENT on SQLite: a deleted job's id is never handed out again (its events
    # and file names still carry it). PostgreSQL identities never reuse values anyway.
    Column("id", Integer, Identity(), primary_key=True),
    Column("status", String(32), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("student_name", String, nullable=False),
    Column("email", String, nullable=False),
    Column("discipline", String, nullable=False),
    Column("class_number", String, nullable=False),
    Column("print_method", String(16), nullable=False),
    Column("color", String, nullable=False),
    Column("preferred_printer", String, nullable=False, default=""),
    Column("notes", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=True),
    Column("authoritative_file", String, nullable=True),
    Column("weight_g", Float, nullable=True),  # grams
    Column("time_hours", Float, nullable=True),  # hours, rounded up to 0.5 h
    Column("cost_cents", Integer, nullable=True),  # integer cents
    Column("confirmation_nonce", String, nullable=True),
    Column("confirmation_expires_at", UTCDateTime, nullable=True),
    Column("printer", String, nullable=True),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("files", JSON, nullable=False),  # list of JobFile objects (convert.converter)
    Column("rejection_reasons", JSON, nullable=False),  # list of strings
    Column("payments", JSON, nullable=False),  # list of Payment objects, voided ones kept
    # Who marked the job reviewed, and when (both NULL: nobody yet, shown as NEW); 0006.
    Column("reviewed_at", UTCDateTime, nullable=True),
    Column("reviewed_by", String, nullable=True),
    # The print line (confirmed_at, UTC; backfilled from the events) and the reminder
    # before a confirmation link expires (when, and for which link's nonce); 0009.
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("reminder_sent_at", UTCDateTime, nullable=True),
    Column("reminder_nonce", String, nullable=True),
    # Staff notes (never shown to the student), who last changed them and when; 0007.
    Column("staff_notes", Text, nullable=False, default="", server_default=""),
    Column("staff_notes_by", String, nullable=True),
    Column("staff_notes_at", UTCDateTime, nullable=True),
    # What a search looks in (printcore.requests.search.search_text: folded name, email,
    # file names, one per line), written with every add/update. On PostgreSQL the index
    # is a GIN trigram index (pg_trgm) serving LIKE '%…%'; migration 0005 falls back to a
    # B-tree of the same name when the server has no pg_trgm. On SQLite a plain index.
    Column("search_text", Text, nullable=False, server_default=""),
    Index(
        None,
        "search_text",
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    ),
    Index(None, "status", "confirmed_at"),
    Index(None, "status", "confirmation_expires_at"),
    sqlite_autoincrement=True,
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("subject", String(32), nullable=False),
    Column("subject_id", Integer, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_name", String, nullable=False),
    Column("workstation", String, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("from_status", String(32), nullable=True),
    Column("to_status", String(32), nullable=True),
    Column("details", JSON, nullable=False),
    Index(None, "subject", "subject_id", "id"),
    # The reports read a date range of events by subject (adapters.sql.analytics); 0011.
    Index(None, "subject", "at", postgresql_include=["kind", "subject_id"]),
    # ... and some kinds of them in a range (rejections, pickups, the counted kinds); 0012.
    Index(None, "subject", "kind", "at", postgresql_include=["subject_id"]),
    sqlite_autoincrement=True,
)

staff = Table(
    "staff",
    metadata,
    Column("name", String, primary_key=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("added_at", UTCDateTime, nullable=True),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workstation", String, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("ended_by", String, nullable=True),
    Index(None, "ended_at"),
)

printers = Table(
    "printers",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("label", String, nullable=False, default=""),
    Column("status", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("holder_ticket", Integer, nullable=True),
    Column("holder", String, nullable=True),
    Column("claim_deadline", UTCDateTime, nullable=True),
    Column("start_deadline", UTCDateTime, nullable=True),
    Column("print_ticket", Integer, nullable=True),
    Column("print_member", String, nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("predicted_end", UTCDateTime, nullable=True),
    Column("offer_not_before", UTCDateTime, nullable=True),
    # What a watched printer last reported (issue 15; printcore.queue.printer_status).
    Column("live_state", String(16), nullable=True),
    Column("live_at", UTCDateTime, nullable=True),
    Column("live_percent", Integer, nullable=True),
    Column("live_layer", Integer, nullable=True),
    Column("live_total_layers", Integer, nullable=True),
    Column("live_remaining_minutes", Integer, nullable=True),  # minutes
    Column("live_file", String, nullable=True),
    Column("live_error", String, nullable=True),
    Column("print_key", String, nullable=True),
    Column("last_print_key", String, nullable=True),
    Column("unclaimed_since", UTCDateTime, nullable=True),
    UniqueConstraint("name"),
    sqlite_autoincrement=True,
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("member", String, nullable=False),  # Discord user id, or a local name
    Column("member_name", String, nullable=False),
    Column("job_name", String, nullable=False),
    Column("est_minutes", Integer, nullable=False),  # minutes
    Column("created_at", UTCDateTime, nullable=False),
    Column("queue_key", Float(precision=53), nullable=False),  # UTC timestamp order
    Column("status", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("printer", String(64), nullable=True),
    Column("offered_at", UTCDateTime, nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("actual_minutes", Integer, nullable=True),  # minutes, known ends only
    Column("photo_url", String, nullable=True),
    Column("misses", Integer, nullable=False, default=0),
    Column("ended_at", UTCDateTime, nullable=True),  # the print's end, when known
    Column("ended_by", String(16), nullable=True),  # member | printer | staff
    Column("bound_minutes", Integer, nullable=True),  # minutes, close − start: upper bound
    Index(None, "status", "queue_key"),
    Index(None, "member", "id"),
    sqlite_autoincrement=True,
)

# Soft locks on jobs (printcore.requests.locks), one row per job, live or expired (the
# service compares expires_at with its clock); ``version`` counts the row's writes, for
# the atomic swap (adapters.sql.locks). No foreign key: a deleted job's lock is inert. 0008.
job_locks = Table(
    "job_locks",
    metadata,
    Column("job_id", Integer, primary_key=True, autoincrement=False),
    Column("staff_name", String, nullable=False),
    Column("workstation", String, nullable=False),
    Column("action", String(32), nullable=False),
    Column("taken_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("channel", String(16), nullable=False),  # email | discord
    Column("kind", String(32), nullable=False),
    Column("recipient", String, nullable=False),
    Column("subject", String(32), nullable=False),  # job | ticket
    Column("subject_id", Integer, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("relayed_at", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    # One file sent with an email (printcore.outbox.Attachment), NULL for none; 0010.
    Column("attachment_name", String, nullable=True),
    Column("attachment_type", String, nullable=True),
    Column("attachment", LargeBinary, nullable=True),
    Index(None, "status", "next_attempt_at"),
    Index(None, "subject", "subject_id"),
    sqlite_autoincrement=True,
)
