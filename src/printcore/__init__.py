"""printcore: the domain of a fab lab's 3D-printing service.

Pure Python (standard library, attrs, python-statemachine). Build the services on any
unit of work (``printcore.memory`` for trying it out, ``adapters.sql`` for real) and take
print requests from upload to pickup. See docs/library.md.

The names below are loaded when first used (PEP 562 ``__getattr__``), so importing one
submodule (``printcore.queue.service`` for the command line's queue, say) does not load
the print-request lifecycle and its state machines too.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from printcore.errors import (
        AuthenticationError,
        ConcurrentChangeError,
        FileTooLargeError,
        InvalidTextError,
        InvalidTransitionError,
        NotFoundError,
        PrintcoreError,
        RateLimitedError,
        StorageError,
        TokenError,
        TokenExpiredError,
        TokenTamperedError,
        TokenUsedError,
        UnsupportedFileError,
        ValidationError,
    )
    from printcore.events import Actor, Event
    from printcore.outbox import (
        DeliveryError,
        MessageSender,
        OutboxMessage,
        OutboxRepository,
        OutboxService,
        RetryPolicy,
    )
    from printcore.ports import (
        Clock,
        EventLog,
        Notice,
        PasswordHasher,
        SessionRepository,
        SettingsRepository,
        StaffMember,
        StaffRepository,
        TokenSigner,
        UnitOfWork,
        WorkstationSession,
    )
    from printcore.requests.job import (
        ACTIVE_STATUSES,
        Job,
        JobFile,
        JobStatus,
        Payment,
        PrintMethod,
        Submission,
    )
    from printcore.requests.lifecycle import EVENTS, JobLifecycle, allowed_events, fire
    from printcore.requests.naming import job_basename, stored_file_name
    from printcore.requests.ports import FileStore, JobRepository, RequestsUnitOfWork, StagedFile
    from printcore.requests.pricing import Pricing, format_cents, round_up_to_half_hour
    from printcore.requests.service import REJECTION_REASONS, PrintRequests
    from printcore.requests.validation import check_submission
    from printcore.slicing import SliceEstimate
    from printcore.staff import StaffDirectory

_WHERE: dict[str, str] = {
    "AuthenticationError": "printcore.errors",
    "ConcurrentChangeError": "printcore.errors",
    "FileTooLargeError": "printcore.errors",
    "InvalidTextError": "printcore.errors",
    "InvalidTransitionError": "printcore.errors",
    "NotFoundError": "printcore.errors",
    "PrintcoreError": "printcore.errors",
    "RateLimitedError": "printcore.errors",
    "StorageError": "printcore.errors",
    "TokenError": "printcore.errors",
    "TokenExpiredError": "printcore.errors",
    "TokenTamperedError": "printcore.errors",
    "TokenUsedError": "printcore.errors",
    "UnsupportedFileError": "printcore.errors",
    "ValidationError": "printcore.errors",
    "Actor": "printcore.events",
    "Event": "printcore.events",
    "DeliveryError": "printcore.outbox",
    "MessageSender": "printcore.outbox",
    "OutboxMessage": "printcore.outbox",
    "OutboxRepository": "printcore.outbox",
    "OutboxService": "printcore.outbox",
    "RetryPolicy": "printcore.outbox",
    "Clock": "printcore.ports",
    "EventLog": "printcore.ports",
    "Notice": "printcore.ports",
    "PasswordHasher": "printcore.ports",
    "SessionRepository": "printcore.ports",
    "SettingsRepository": "printcore.ports",
    "StaffMember": "printcore.ports",
    "StaffRepository": "printcore.ports",
    "TokenSigner": "printcore.ports",
    "UnitOfWork": "printcore.ports",
    "WorkstationSession": "printcore.ports",
    "ACTIVE_STATUSES": "printcore.requests.job",
    "Job": "printcore.requests.job",
    "JobFile": "printcore.requests.job",
    "JobStatus": "printcore.requests.job",
    "Payment": "printcore.requests.job",
    "PrintMethod": "printcore.requests.job",
    "Submission": "printcore.requests.job",
    "EVENTS": "printcore.requests.lifecycle",
    "JobLifecycle": "printcore.requests.lifecycle",
    "allowed_events": "printcore.requests.lifecycle",
    "fire": "printcore.requests.lifecycle",
    "job_basename": "printcore.requests.naming",
    "stored_file_name": "printcore.requests.naming",
    "FileStore": "printcore.requests.ports",
    "JobRepository": "printcore.requests.ports",
    "RequestsUnitOfWork": "printcore.requests.ports",
    "StagedFile": "printcore.requests.ports",
    "Pricing": "printcore.requests.pricing",
    "format_cents": "printcore.requests.pricing",
    "round_up_to_half_hour": "printcore.requests.pricing",
    "PrintRequests": "printcore.requests.service",
    "REJECTION_REASONS": "printcore.requests.service",
    "check_submission": "printcore.requests.validation",
    "SliceEstimate": "printcore.slicing",
    "StaffDirectory": "printcore.staff",
}

__version__ = "0.1.0"

__all__ = [
    "ACTIVE_STATUSES",
    "EVENTS",
    "REJECTION_REASONS",
    "Actor",
    "AuthenticationError",
    "Clock",
    "ConcurrentChangeError",
    "DeliveryError",
    "Event",
    "EventLog",
    "FileStore",
    "FileTooLargeError",
    "InvalidTextError",
    "InvalidTransitionError",
    "Job",
    "JobFile",
    "JobLifecycle",
    "JobRepository",
    "JobStatus",
    "MessageSender",
    "NotFoundError",
    "Notice",
    "OutboxMessage",
    "OutboxRepository",
    "OutboxService",
    "PasswordHasher",
    "Payment",
    "Pricing",
    "PrintMethod",
    "PrintRequests",
    "PrintcoreError",
    "RateLimitedError",
    "RequestsUnitOfWork",
    "RetryPolicy",
    "SessionRepository",
    "SettingsRepository",
    "SliceEstimate",
    "StaffDirectory",
    "StaffMember",
    "StaffRepository",
    "StagedFile",
    "StorageError",
    "Submission",
    "TokenError",
    "TokenExpiredError",
    "TokenSigner",
    "TokenTamperedError",
    "TokenUsedError",
    "UnitOfWork",
    "UnsupportedFileError",
    "ValidationError",
    "WorkstationSession",
    "allowed_events",
    "check_submission",
    "fire",
    "format_cents",
    "job_basename",
    "round_up_to_half_hour",
    "stored_file_name",
]


def __getattr__(name: str) -> Any:
    """Load ``name`` from its submodule on first use (then cache it here)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'printcore' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
