"""The default mail backend: each email written as an ``.eml`` file (no server needed).

Files are named ``<UTC time>-job<id>-<kind>-<random>.eml`` under the mail folder, written
to a temporary name and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from adapters.mail.render import MailRenderer
from printcore.ports import Notice

__all__ = ["FileMailer"]


class FileMailer:
    def __init__(self, folder: Path, renderer: MailRenderer) -> None:
        self.folder = Path(folder)
        self.renderer = renderer

    def send(self, notices: Iterable[Notice]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for notice in notices:
            message = self.renderer.render(notice)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            name = f"{stamp}-job{notice.job_id}-{notice.kind}-{uuid.uuid4().hex[:8]}.eml"
            temp = self.folder / f".{name}.tmp"
            temp.write_bytes(bytes(message))
            os.replace(temp, self.folder / name)

    def messages(self) -> list[Path]:
        """The written messages, oldest first."""
        return sorted(self.folder.glob("*.eml"))
