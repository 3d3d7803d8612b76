"""Getting committed outbox rows delivered.

* On Redis (``REDIS_URL`` set): :mod:`adapters.delivery.broker` hands row ids to Dramatiq
  (the ``printcore.outbox`` queue); ``printcore worker`` runs the Dramatiq worker, whose
  actor delivers one row, and a :class:`Relay` that hands over every due row the fast
  path missed (Redis was down, a process died between its commit and the hand-over).
* On the embedded default (no Redis): :class:`InlineDelivery`, a thread in the web
  process, delivers due rows itself, woken at once by each commit.

Either way the unit of work's ``after_commit`` hook gets the new row ids, so an idle
system delivers within a fraction of a second, and a poll finds whatever it missed.
"""

from adapters.delivery.inline import InlineDelivery
from adapters.delivery.relay import Relay

__all__ = ["InlineDelivery", "Relay"]
