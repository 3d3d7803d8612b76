"""Live updates for open staff pages: what changed (the event log, read by id) and a
wake-up when it did (in-process; across processes through PostgreSQL ``LISTEN/NOTIFY``,
or Redis pub/sub when ``REDIS_URL`` is set).

The event log is the source of truth, so a change is seen only once it is committed, and
a stream that reconnects with ``Last-Event-ID`` (an event id) misses nothing; wake-ups only
make it fast. Without one (SQLite and another process, say ``printcore queue``), the
stream notices within its poll period (1 s).
"""

from adapters.live.feed import Change, ChangeFeed
from adapters.live.hub import LiveHub, PostgresChannel, RedisChannel

__all__ = ["Change", "ChangeFeed", "LiveHub", "PostgresChannel", "RedisChannel"]
