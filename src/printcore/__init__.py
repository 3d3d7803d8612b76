"""printcore: the domain of a fab lab's 3D-printing service.

Pure Python (standard library, attrs, python-statemachine). Build the services on any
unit of work (``printcore.memory`` for trying it out, ``adapters.sql`` for real) and take
print requests from upload to pickup. See docs/library.md.
"""

from __future__ import annotations

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
