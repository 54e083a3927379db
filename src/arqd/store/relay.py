"""The relay that carries workflows across queues (and so across Redis Cluster slots: no
script touches two queues).

A workflow lives on its home queue. Starting a step writes its members of other queues
into the workflow's outbox (``wf:<id>:out``, and the id into the queue's ``wfout``); a
member's end on another queue writes a notice into that queue's ``wfn``. Each relay step
is one script on one queue, safe to redo, and what it has moved is dropped only after the
next step ran, so a relay stopped anywhere leaves work that a later one redoes:

    outbox   read ``wf:<id>:out``  ->  workflow_deliver.lua on each target queue (creates
             what is not there yet; cancels)  ->  workflow_sent.lua on the home queue
    notices  read ``wfn``  ->  workflow_notices.lua on each home queue (counted once, by
             the member's outcome byte and generation; may start the next step)  ->  the
             outboxes that filled  ->  workflow_noticed.lua (drops each notice unchanged)

Who relays: the worker whose finish wrote a notice, right after it; the client after
starting, cancelling or retrying; and every worker's sweep of its own queues (once a
second, told by its schedule poll which queues have notices or outboxes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from arqd.core.settings import Settings
from arqd.store.codec import text
from arqd.store.keys import Keys
from arqd.store.scripts import Scripts
from arqd.store.tasks import Tasks

US = b"\x1f"
BATCH = 500  # notices or entries one script call carries, and notices one sweep reads


@dataclass(frozen=True, slots=True)
class Notice:
    """How a member on another queue ended (code s, f, x, e) or that it was retried (r),
    for its workflow on ``home``; ``raw`` as read, to drop it only if unchanged."""

    member: bytes
    raw: bytes
    home: str
    workflow: str
    fields: tuple[bytes, ...]  # offset, generation, code, data: workflow_notices.lua's


def decode_notice(member: bytes, raw: bytes) -> Notice:
    home, workflow, offset, generation, code, data = raw.split(US, 5)
    return Notice(member, raw, text(home), text(workflow), (offset, generation, code, data))


@dataclass(frozen=True, slots=True)
class Entry:
    """One outbox entry: create (``m``) or cancel (``c``) member ``member`` on ``queue``;
    ``step`` names the step whose input a record without payload takes; ``detail`` is the
    member's record (create) or its task type (cancel)."""

    field: bytes
    kind: bytes
    queue: str
    member: bytes
    wf: bytes
    step: bytes
    detail: bytes

    @property
    def takes_input(self) -> bool:
        return self.kind == b"m" and self.detail.split(US, 2)[1] == b""


def decode_entry(field: bytes, raw: bytes) -> Entry:
    """An entry as common.lua writes it: m, queue, step, the record's 7 fields, wf; or c,
    queue, type, wf (wf last: a member's on another queue holds the separator too)."""
    kind, queue, rest = raw.split(US, 2)
    if kind == b"m":
        parts = rest.split(US, 8)
        return Entry(field, kind, text(queue), field, parts[8], parts[0], US.join(parts[1:8]))
    task_type, wf = rest.split(US, 1)
    return Entry(field, kind, text(queue), field.removeprefix(b"c:"), wf, b"", task_type)


@dataclass(frozen=True, slots=True)
class Sent:
    """What an outbox's relay moved: its entries, and the queues where a cancel left
    notices (their ``notices`` is next)."""

    entries: int = 0
    noticed: frozenset[str] = frozenset()


class Relay:
    """The relay's steps, each one call; ``notices``, ``outbox`` and ``sweep`` chain them."""

    def __init__(self, scripts: Scripts, keys: Keys, settings: Settings, tasks: Tasks) -> None:
        self.scripts = scripts
        self.keys = keys
        self.settings = settings
        self.tasks = tasks

    async def sweep(self, queue: str) -> int:
        """Relay the outboxes of ``queue``'s workflows and the notices of its members
        (a batch of each); how many entries and notices were moved."""
        moved = 0
        wids = await self.scripts.on_key("SRANDMEMBER", self.keys.outboxes(queue), BATCH)
        for wid in wids or ():
            moved += (await self.outbox(queue, text(wid))).entries
        return moved + await self.notices(queue)

    async def after(self, queue: str, member: str) -> None:
        """What a cancel or retry by hand of ``member`` (on ``queue``) left: its notice,
        if its workflow is on another queue, or its workflow's outbox, if its end started
        a step with members elsewhere."""
        await self.notices(queue, [member])
        await self.outbox(queue, member.rsplit(".", 2)[0])

    async def notices(self, queue: str, members: Sequence[str] | None = None) -> int:
        """Apply notices of ``queue``'s members (those of ``members``, or a batch of any)
        on their workflows' queues, relay the outboxes that filled, then drop them."""
        found = await self.read_notices(queue, members)
        if found:
            await self.apply(found)
            await self.drop_notices(queue, found)
        return len(found)

    async def read_notices(self, queue: str, members: Sequence[str] | None = None) -> list[Notice]:
        key = self.keys.notices(queue)
        if members is not None:
            values = await self.scripts.on_key("HMGET", key, *members) if members else []
            pairs = [(m.encode(), v) for m, v in zip(members, values, strict=True) if v]
        else:
            found = await self.scripts.on_key("HRANDFIELD", key, BATCH, "WITHVALUES") or []
            if found and isinstance(found[0], list):  # RESP3: [field, value] pairs
                pairs = [(member, raw) for member, raw in found]
            else:
                pairs = list(zip(found[::2], found[1::2], strict=True))
        return [decode_notice(member, raw) for member, raw in pairs]

    async def apply(self, notices: Sequence[Notice]) -> None:
        """Count the notices in their workflows, then relay what that put in outboxes."""
        by_home: dict[str, list[Notice]] = defaultdict(list)
        for notice in notices:
            by_home[notice.home].append(notice)
        for home, found in by_home.items():
            for first in range(0, len(found), BATCH):
                args: list[bytes | str | int] = [self.settings.events_max]
                for n in found[first : first + BATCH]:
                    args += [n.workflow, *n.fields]
                filled = await self.scripts.run_acked(
                    "workflow_notices", [self.keys.queue(home)], *args
                )
                for wid in filled:
                    await self.outbox(home, text(wid))

    async def drop_notices(self, queue: str, notices: Sequence[Notice]) -> None:
        for first in range(0, len(notices), BATCH):
            args = [part for n in notices[first : first + BATCH] for part in (n.member, n.raw)]
            await self.scripts.run_acked("workflow_noticed", [self.keys.queue(queue)], *args)

    async def outbox(self, home: str, workflow_id: str) -> Sent:
        """Deliver the outbox of workflow ``workflow_id`` on ``home``, then drop what was
        delivered."""
        entries = await self.read_outbox(home, workflow_id)
        if not entries:
            return Sent()
        noticed = await self.deliver(home, workflow_id, entries)
        await self.mark_sent(home, workflow_id, entries)
        return Sent(len(entries), frozenset(noticed))

    async def read_outbox(self, home: str, workflow_id: str) -> list[Entry]:
        found = await self.scripts.hash(self.keys.workflow_outbox(home, workflow_id))
        return [decode_entry(field, raw) for field, raw in found.items()]

    async def deliver(self, home: str, workflow_id: str, entries: Sequence[Entry]) -> set[str]:
        """Create and cancel the entries' members on their queues (workflow_deliver.lua);
        members that exist are cancelled by cancel.lua. Returns the queues with notices."""
        inputs = await self._inputs(home, workflow_id, entries)
        cancelled = {e.member for e in entries if e.kind == b"c"}
        by_queue: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            if entry.kind == b"c" or entry.member not in cancelled:
                by_queue[entry.queue].append(entry)
        noticed = set()
        for queue, found in by_queue.items():
            for first in range(0, len(found), BATCH):
                batch = found[first : first + BATCH]
                if await self._deliver(queue, batch, inputs):
                    noticed.add(queue)
        return noticed

    async def _deliver(
        self, queue: str, entries: Sequence[Entry], inputs: dict[bytes, bytes]
    ) -> bool:
        s = self.settings
        args: list[bytes | str | int] = [s.events_max, s.result_ttl, s.finished_index_max]
        for e in entries:
            args += [e.kind, e.member, e.wf, e.detail, inputs.get(e.step, b"null")]
        existing, written = await self.scripts.run_acked(
            "workflow_deliver", [self.keys.queue(queue)], *args
        )
        for member in existing:
            await self.tasks.cancel(queue, text(member))
        return bool(existing or written)

    async def _inputs(
        self, home: str, workflow_id: str, entries: Sequence[Entry]
    ) -> dict[bytes, bytes]:
        """The inputs (previous results) of the steps whose entries take them."""
        steps = sorted({e.step for e in entries if e.takes_input})
        if not steps:
            return {}
        key = self.keys.workflow(home, workflow_id)
        values = await self.scripts.on_key("HMGET", key, *(b"in" + k for k in steps))
        return {k: v for k, v in zip(steps, values, strict=True) if v is not None}

    async def mark_sent(self, home: str, workflow_id: str, entries: Sequence[Entry]) -> None:
        fields = [e.field for e in entries]
        await self.scripts.run_acked("workflow_sent", [self.keys.queue(home)], workflow_id, *fields)
