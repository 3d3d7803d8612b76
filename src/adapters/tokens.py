"""Signed link tokens (printcore's TokenSigner port) with itsdangerous.

One salt per purpose (``confirm``, ``status``, ``api``), so a token made for one use is
refused for another. Expiry is checked by printcore against its clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from printcore.errors import TokenTamperedError

__all__ = ["ItsdangerousSigner"]


class ItsdangerousSigner:
    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        return URLSafeSerializer(self._secret, salt=f"printcore.{purpose}")

    def dumps(self, purpose: str, payload: Mapping[str, Any]) -> str:
        token = self._serializer(purpose).dumps(dict(payload))
        return str(token)

    def loads(self, purpose: str, token: str) -> dict[str, Any]:
        """Raises TokenTamperedError for a bad signature, another purpose or garbage."""
        try:
            data = self._serializer(purpose).loads(token)
        except (BadSignature, UnicodeError, ValueError):
            raise TokenTamperedError() from None
        if not isinstance(data, dict):
            raise TokenTamperedError()
        return data
