"""OpenAPI paths of the storage integrity audit (``/admin/audit``, ``/admin/audit/repair``),
merged into adapters.web.openapi's spec. Filled in with the audit API."""

from __future__ import annotations

from typing import Any

__all__ = ["audit_paths"]


def audit_paths(errors: Any, security: list[dict[str, list[str]]]) -> dict[str, Any]:
    """The paths, keyed as in the spec (relative to ``/api/v1``)."""
    del errors, security
    return {}
