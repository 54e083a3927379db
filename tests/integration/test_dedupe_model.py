"""The enqueue script's deduplication against its Python reference, step by step.

Random sequences of enqueues (each with a mode drawn from the four, on one key), starts
(a worker leases the next ready task), finishes (succeeded, failed, retry with backoff,
handed back) and window lapses run on a real Redis through arqd's own store, and through
a model whose only rule is ``arqd.core.dedupe.blocks``; after every enqueue the task
returned must be the one the model names, and every refusal must be one
``deduplicated`` event naming the kept task, its status, the mode and the refused id.

Redis's clock cannot be injected, and a key's TTL runs on it. So windows are a minute
long (none lapses on its own during an example), and a lapse is made by hand: the key's
TTL is cut to 1 ms and the test awaits its expiry, which is what the end of a window is
to the enqueue script (it reads the key, nothing else, to know the window). That a
window's length is kept is checked with real waits in test_dedupe.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arqd.core.dedupe import Dedupe, DedupeMode, blocks
from arqd.core.lease import Answer, Lease
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.store.codec import error_json
from arqd.store.connection import connect
from arqd.store.store import Store
from conftest import RedisServer, eventually

KEY = "k"
WINDOW = 60.0  # seconds: no window lapses on its own during an example
ERROR = error_json("E", "boom", None)
OUTCOMES = {
    "succeeded": ("succeeded", b"null", 0),
    "failed": ("failed", ERROR, 0),
    "retry": ("scheduled", ERROR, 60_000),
    "returned": ("queued", b"", 0),
}
_examples = itertools.count()

Step = tuple[str, str]
# Enqueues of each mode and starts drawn more often than the rest: a corner needs a task
# started, then waiting again (handed back, or backing off), before an enqueue sees it.
CHOICES: list[Step] = [
    *[("enqueue", m.value) for m in DedupeMode] * 2,
    *[("start", "")] * 3,
    *[("finish", outcome) for outcome in OUTCOMES],
    ("lapse", ""),
]
steps = st.lists(st.sampled_from(CHOICES), min_size=4, max_size=30)


@dataclass
class Model:
    """What the queue holds, as far as deduplication can tell."""

    status: dict[str, str] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    payload: dict[str, int] = field(default_factory=dict)
    ready: deque[str] = field(default_factory=deque)  # next to lease at the left
    active: deque[Lease] = field(default_factory=deque)
    kept: str | None = None
    key_alive: bool = False
    refusals: list[tuple[str, str, str, str]] = field(default_factory=list)

    def enqueue(self, mode: DedupeMode, task_id: str, payload: int) -> str:
        """The id the enqueue must return, the model changed as the script would."""
        kept = self.kept
        if kept is not None and blocks(
            mode, self.status.get(kept), kept in self.started, self.key_alive
        ):
            self.refusals.append((kept, self.status[kept], mode.value, task_id))
            if mode is DedupeMode.DEBOUNCE:
                self.payload[kept] = payload
            return kept
        self.kept, self.key_alive = task_id, True
        self.payload[task_id] = payload
        if mode is DedupeMode.DEBOUNCE:
            self.status[task_id] = "scheduled"
        else:
            self.status[task_id] = "queued"
            self.ready.append(task_id)
        return task_id


async def run(url: str, plan: list[Step]) -> None:
    queue = f"model{next(_examples)}"
    store = Store(connect(url), Settings(redis_url=url, key_prefix="dedupe-model"))
    model = Model()
    try:
        for number, (kind, arg) in enumerate(plan):
            await STEPS[kind](store, queue, model, arg, number)
        entries = await store.events.read_after({queue: "0-0"}, block_ms=1, count=10_000)
        fields = [{k.decode(): v.decode() for k, v in e.fields.items()} for e in entries]
        refusals = [
            (f["task"], f["status"], f["mode"], f["refused"])
            for f in fields
            if f["event"] == "deduplicated"
        ]
        assert refusals == model.refusals
    finally:
        await store.close()


async def enqueue(store: Store, queue: str, model: Model, mode: str, n: int) -> None:
    dedupe = Dedupe(KEY, mode, WINDOW if DedupeMode(mode).windowed else None)
    task = NewTask("job", n, queue=queue, dedupe=dedupe)
    expected = model.enqueue(DedupeMode(mode), task.id, n)
    (got,) = await store.tasks.enqueue([task])
    assert (got.id, got.created) == (expected, expected == task.id)
    stored = await store.tasks.get(expected, queue)
    assert stored is not None
    assert (stored.status.value, stored.payload) == (
        model.status[expected],
        model.payload[expected],
    )


async def start(store: Store, queue: str, model: Model, _: str, __: int) -> None:
    leases = (await store.leases.dequeue(queue, 1, "model-worker")).leases
    assert [lease.id for lease in leases] == list(model.ready)[:1]
    for lease in leases:
        model.ready.popleft()
        model.active.append(lease)
        model.status[lease.id] = "active"
        model.started.add(lease.id)


async def finish(store: Store, queue: str, model: Model, outcome: str, _: int) -> None:
    if not model.active:
        return
    lease = model.active.popleft()
    status, value, delay = OUTCOMES[outcome]
    assert await store.leases.finish(queue, [Answer(lease, outcome, value, delay)]) == [True]
    model.status[lease.id] = status
    if outcome == "returned":
        model.ready.appendleft(lease.id)  # handed back to the front of its priority


async def lapse(store: Store, queue: str, model: Model, _: str, __: int) -> None:
    key = store.keys.dedupe(queue, KEY)
    if await store.redis.pexpire(key, 1):

        async def expired() -> bool:  # by Redis's own expiry of the key
            return not await store.redis.exists(key)

        await eventually(expired)
    model.key_alive = False


STEPS = {"enqueue": enqueue, "start": start, "finish": finish, "lapse": lapse}


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(plan=steps)
def test_the_script_decides_as_the_model(redis_server: RedisServer, plan: list[Step]) -> None:
    asyncio.run(run(redis_server.url, plan))
