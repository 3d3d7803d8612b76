"""Storage folders on a local or mounted disk: ``Uploaded/``, ``Pending/``..., one folder
per job with its files and ``metadata.json``."""

from adapters.files.staging import StagingArea, UploadTooLarge
from adapters.files.store import LocalFileStore

__all__ = ["LocalFileStore", "StagingArea", "UploadTooLarge"]
