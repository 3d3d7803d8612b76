"""What the web adapter is given by the wiring: printcore services and a few settings."""

from __future__ import annotations

from pathlib import Path

import attrs

from adapters.files import LocalFileStore, StagingArea
from adapters.live import ChangeFeed, LiveHub
from adapters.web.inspection import Inspector
from adapters.web.slicer_links import OpenerLinks
from adapters.web.throttle import Throttle
from printcore.outbox import OutboxService
from printcore.ports import TokenSigner
from printcore.queue.service import QueueService
from printcore.requests.ages import AgeThresholds
from printcore.requests.analytics import Analytics
from printcore.requests.details import DEFAULT_COLORS
from printcore.requests.service import PrintRequests
from printcore.staff import StaffDirectory

__all__ = ["WebContext"]


@attrs.define
class WebContext:
    """``max_upload_bytes`` caps each uploaded file; ``timezone`` is the lab's zone for
    display; ``database_kind`` is ``sqlite`` or ``postgresql`` (shown by /api/v1/health);
    ``session_hours`` is how long a staff login lasts; ``queue`` is the self-service
    queue's service (None: the printers page says it is not set up)."""

    requests: PrintRequests
    staff: StaffDirectory
    files: LocalFileStore
    staging: StagingArea
    inspector: Inspector
    signer: TokenSigner
    secret_key: str
    max_upload_bytes: int = 200_000_000
    timezone: str = "America/Chicago"
    lab_name: str = "Fab Lab 3D printing"
    database_kind: str = "sqlite"
    storage_root: Path | None = None
    https_only: bool = False
    session_hours: int = 12
    queue: QueueService | None = None  # the self-service queue (staff printers page)
    access_hours: str = "always"  # the spec, shown on the printers page
    opener_links: OpenerLinks | None = None  # print3d:// links (None: no opener secret)
    outbox: OutboxService | None = None  # messages per job, failed-email flags, retry
    throttle: Throttle | None = None  # login and submission limits (None: unlimited)
    live_feed: ChangeFeed | None = None  # /staff/events: what changed (None: no stream)
    live_hub: LiveHub | None = None  # /staff/events: the wake-up after each commit
    # Dashboard cards turn amber / red after this long in their state (PRINTCORE_AGE_*).
    age_thresholds: AgeThresholds = attrs.Factory(AgeThresholds)
    # The lab's lists for colour and preferred printer on the forms ("other" besides).
    colors: tuple[str, ...] = DEFAULT_COLORS  # PRINTCORE_COLORS
    printer_choices: tuple[str, ...] = ()  # names from the printers file
    analytics: Analytics | None = None  # /staff/reports, /api/v1/analytics (None: 503)
    # The admin area's "settings in effect": Settings.describe() (secrets already masked),
    # field name -> value as text; empty when the wiring gives none.
    settings_in_effect: dict[str, str] = attrs.Factory(dict)
    #: Where the admin's retention runs write their zip archives ($PRINTCORE_HOME/archives).
    archive_dir: Path | None = None
    #: The default address of the payments export emailed to finance (PRINTCORE_FINANCE_EMAIL).
    finance_email: str | None = None
