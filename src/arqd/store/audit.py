"""The audit trail: one entry per action an operator takes through the dashboard.

Not task state, so plain commands: each entry is one ``XADD`` onto a capped stream, which
is atomic on its own. Entries hold the digest of the acting key, never the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arqd.store.codec import text
from arqd.store.connection import RedisClient
from arqd.store.keys import Keys

AUDIT_MAX = 10_000  # entries kept (approximately: the stream is trimmed with ~)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One action: who (a key's digest, or ``open`` without keys), what, on what, how many."""

    id: str
    at: datetime
    actor: str
    action: str
    target: str
    count: int


class Audit:
    """Appends to and reads the capped audit stream."""

    def __init__(self, redis: RedisClient, keys: Keys, cap: int = AUDIT_MAX) -> None:
        self.redis = redis
        self.keys = keys
        self.cap = cap

    async def append(self, actor: str, action: str, target: str, count: int) -> str:
        """Record one action; its entry's id."""
        fields: dict[Any, Any] = {
            "actor": actor,
            "action": action,
            "target": target,
            "count": count,
        }
        entry = await self.redis.xadd(
            self.keys.audit_events(), fields, maxlen=self.cap, approximate=True
        )
        return text(entry)

    async def recent(self, limit: int) -> list[AuditEvent]:
        """The newest ``limit`` entries, newest first."""
        entries: Any = await self.redis.xrevrange(self.keys.audit_events(), count=limit)
        return [_decode(text(entry_id), fields) for entry_id, fields in entries]


def _decode(entry_id: str, fields: dict[bytes, bytes]) -> AuditEvent:
    ms = int(entry_id.partition("-")[0])
    return AuditEvent(
        id=entry_id,
        at=datetime.fromtimestamp(ms / 1000, UTC),
        actor=fields.get(b"actor", b"").decode(),
        action=fields.get(b"action", b"").decode(),
        target=fields.get(b"target", b"").decode(),
        count=int(fields.get(b"count", b"0")),
    )
