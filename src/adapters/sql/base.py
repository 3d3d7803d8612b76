"""What the repositories need of a unit of work: its open connection. The repositories
take any object with one, so they never import ``adapters.sql.uow``, which assembles them."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection

__all__ = ["HasConnection"]


class HasConnection(Protocol):
    @property
    def connection(self) -> Connection:
        """The open connection. Raises RuntimeError outside a ``with`` block."""
        ...
