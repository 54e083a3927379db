"""The feeds' merge and resume logic (``Follower``) held to a simple model of capped
streams: random interleavings of events over several queues (several in one millisecond),
reads cut at random counts, new queues, trimming, and clients that drop at random points
and resume with the last event id they received. Reads are of every stream at one moment
(one server's MULTI), or of each stream at a moment of its own with writes in between (a
Redis Cluster, one MULTI per slot, with each slot's time: ``Snapshot.bound``).

The model: every event ever written, per queue, in order. What a client received over all
its connections, deduplicated, must be every event after its start, per queue, in order,
but for events trimmed before they were read, each of which lies in a gap it was told of.
Repeats are only of events in the millisecond of the id it resumed from.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from arqd.feeds import Follower, Gap, fresh, resumed
from arqd.store.events import Snapshot, StreamCounts, StreamEvent, id_key

QUEUES = ("a", "b", "c")


@dataclass
class Stream:
    entries: list[tuple[int, int]] = field(default_factory=list)  # ids kept, oldest first
    added: int = 0


@dataclass
class Redis:
    """Capped streams with Redis's ids, and the set of queue names."""

    cap: int
    now: int = 1000
    streams: dict[str, Stream] = field(default_factory=dict)
    written: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # every id

    def write(self, queue: str) -> None:
        stream = self.streams.setdefault(queue, Stream())  # the name first, then the entry
        last = self.written[queue][-1] if queue in self.written else None
        new = (self.now, last[1] + 1) if last and last[0] == self.now else (self.now, 0)
        stream.entries.append(new)
        stream.added += 1
        self.written.setdefault(queue, []).append(new)
        del stream.entries[: max(0, len(stream.entries) - self.cap)]

    def counts(self, labels: list[str]) -> dict[str, StreamCounts]:
        out = {}
        for label in labels:
            if (s := self.streams.get(label)) is not None and s.added:
                first = f"{s.entries[0][0]}-{s.entries[0][1]}" if s.entries else None
                last = self.written[label][-1]
                out[label] = StreamCounts(s.added, len(s.entries), first, f"{last[0]}-{last[1]}")
        return out

    def snapshot(self, positions: dict[str, str], count: int, every_queue: bool) -> Snapshot:
        events = {}
        for label, position in positions.items():
            stream = self.streams.get(label)
            after = [e for e in (stream.entries if stream else []) if e > id_key(position)]
            if after:
                events[label] = [StreamEvent(label, f"{ms}-{seq}", {}) for ms, seq in after[:count]]
        names = sorted(self.streams) if every_queue else None
        return Snapshot(self.counts(list(positions)), events, count, names)

    def spread_snapshot(
        self,
        positions: dict[str, str],
        count: int,
        every_queue: bool,
        between: list[tuple[str, bool]],
    ) -> Snapshot:
        """Each stream read at a moment of its own, ``between`` written after each read
        (one each, in order), the names read last; bounded by the oldest moment."""
        counts: dict[str, StreamCounts] = {}
        events: dict[str, list[StreamEvent]] = {}
        moments = []
        writes = iter(between)
        for label, position in positions.items():
            one = self.snapshot({label: position}, count, False)
            counts.update(one.counts)
            events.update(one.events)
            moments.append((self.now - 1, 2**64 - 1))  # later entries: this ms or after
            if (write := next(writes, None)) is not None:
                self.now += 0 if write[1] else 1
                self.write(write[0])
        names = sorted(self.streams) if every_queue else None
        bound = min(moments) if len(moments) > 1 else None
        return Snapshot(counts, events, count, names, bound)


@dataclass
class Client:
    """What one client received over all its connections."""

    every_queue: bool
    events: list[StreamEvent] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    resumed_from: list[str] = field(default_factory=list)
    before_start: set[tuple[str, tuple[int, int]]] = field(default_factory=set)


def connect(redis: Redis, client: Client) -> Follower:
    labels = sorted(redis.streams) if client.every_queue else ["a"]
    if not client.events:  # nothing to resume from: a new start (earlier gaps are moot)
        client.before_start = {(q, i) for q, ids in redis.written.items() for i in ids}
        client.gaps.clear()
        return Follower(fresh(labels, redis.counts(labels)))
    last = client.events[-1].id
    client.resumed_from.append(last)
    owners = [q for q in labels if q in redis.streams and id_key(last) in redis.streams[q].entries]
    return Follower(resumed(labels, last, client.every_queue, owners, redis.counts(labels)))


WRITES_BETWEEN = st.lists(st.tuples(st.sampled_from(QUEUES), st.booleans()), max_size=3)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(QUEUES), st.booleans()),
        st.tuples(st.just("read"), st.integers(1, 6), st.integers(0, 12)),
        st.tuples(st.just("spread"), st.integers(1, 6), WRITES_BETWEEN),
        st.tuples(st.just("drop"), st.just(0), st.just(0)),
    ),
    max_size=80,
)


def run(ops: list[tuple[str, object, object]], every_queue: bool, cap: int) -> tuple[Redis, Client]:
    redis = Redis(cap)
    redis.write("a")  # a queue there before the client starts
    client = Client(every_queue)
    follower = connect(redis, client)
    for op, x, y in ops:
        if op == "write":
            assert isinstance(x, str)
            redis.now += 0 if y else 1  # several queues' events in one millisecond
            redis.write(x)
        elif op == "drop":
            follower = connect(redis, client)
        else:
            assert isinstance(x, int)
            if op == "spread":
                assert isinstance(y, list)
                positions = follower.positions()
                taken = follower.take(redis.spread_snapshot(positions, x, every_queue, y))
                y = 0
            else:
                taken = follower.take(redis.snapshot(follower.positions(), x, every_queue))
            assert isinstance(y, int)
            for received, item in enumerate(taken or []):
                if received >= y > 0:  # the connection drops part way through
                    follower = connect(redis, client)
                    break
                if isinstance(item, Gap):
                    client.gaps.append(item)
                else:
                    client.events.append(item)
    for _ in range(200):  # the last connection reads everything that is left
        taken = follower.take(redis.snapshot(follower.positions(), 5, every_queue))
        if taken == []:
            break
        for item in taken or []:
            (client.gaps if isinstance(item, Gap) else client.events).append(item)  # type: ignore[arg-type]
    redis.written = {  # what was there before the client started is not expected
        q: [i for i in ids if (q, i) not in client.before_start] for q, ids in redis.written.items()
    }
    return redis, client


def ids(events: list[StreamEvent], queue: str) -> list[tuple[int, int]]:
    return [id_key(e.id) for e in events if e.queue == queue]


def check(redis: Redis, client: Client) -> None:
    queues = sorted(redis.written) if client.every_queue else ["a"]
    resumed_ms = {id_key(i)[0] for i in client.resumed_from}
    for queue in queues:
        got = ids(client.events, queue)
        unique = sorted(set(got))
        expected = redis.written[queue]
        # In order, each event once, but for repeats within a millisecond resumed from.
        assert all(a <= b or b[0] in resumed_ms for a, b in itertools.pairwise(got))
        repeats = [i for i in set(got) if got.count(i) > 1]
        assert all(ms in resumed_ms for ms, _ in repeats), (queue, repeats)
        # Nothing made up; from before the start, only the resumed millisecond's events.
        assert all(i in expected or i[0] in resumed_ms for i in unique)
        missing = [i for i in expected if i not in set(got)]
        windows = [
            (id_key(g.after), id_key(g.resumes_at) if g.resumes_at else (2**64, 0))
            for g in client.gaps
            if g.queue == queue
        ]
        for lost in missing:  # never silently: inside a gap the client was told of
            assert any(after < lost < resumes for after, resumes in windows), (queue, lost)


@settings(max_examples=1000, deadline=None, print_blob=True)  # a failure prints how to replay it
@given(OPS, st.booleans())
def test_a_feed_misses_nothing_and_repeats_only_the_resumed_millisecond(
    ops: list[tuple[str, object, object]], every_queue: bool
) -> None:
    redis, client = run(ops, every_queue, cap=10_000)
    check(redis, client)
    assert client.gaps == []  # nothing was trimmed: no gap is reported


@settings(max_examples=1000, deadline=None, print_blob=True)  # a failure prints how to replay it
@given(OPS, st.booleans(), st.integers(1, 8))
def test_events_trimmed_before_they_were_read_are_reported_as_gaps(
    ops: list[tuple[str, object, object]], every_queue: bool, cap: int
) -> None:
    redis, client = run(ops, every_queue, cap)
    check(redis, client)
    for gap in client.gaps:  # a gap whose size is known is exact
        if gap.missed is not None:
            window = (id_key(gap.after), id_key(gap.resumes_at) if gap.resumes_at else (2**64, 0))
            lost = [i for i in redis.written.get(gap.queue, []) if window[0] < i < window[1]]
            assert gap.missed == len(lost) > 0


SPREAD_OPS = st.lists(  # a cluster's feed: every read spread, writes between, drops
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(QUEUES), st.booleans()),
        st.tuples(st.just("spread"), st.integers(1, 6), WRITES_BETWEEN),
        st.tuples(st.just("drop"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=1000, deadline=None, print_blob=True)  # a failure prints how to replay it
@given(SPREAD_OPS, st.integers(1, 10_000))
def test_a_feed_over_streams_read_at_different_moments_misses_nothing(
    ops: list[tuple[str, object, object]], cap: int
) -> None:
    redis, client = run(ops, True, cap)
    check(redis, client)
