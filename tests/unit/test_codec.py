import os
import re
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import pytest

from arqd.core.errors import InvalidTask, PayloadTooLarge
from arqd.core.ids import new_task_id, task_ids
from arqd.core.task import NewTask, TaskStatus
from arqd.store.codec import STATUS_CODES, decode_fetched, decode_task, enqueue_args


def args(task: NewTask, limit: int = 1000) -> list[object]:
    return list(enqueue_args(task, limit, 60_000))


def test_minimal_task_sends_no_optional_fields() -> None:
    a = args(NewTask("send_email", {"to": "x"}, id="abc"))
    assert a == ["abc", "send_email", b'{"to":"x"}', 0]


def test_options_become_fields_in_milliseconds() -> None:
    a = args(NewTask("t", None, max_retries=2, timeout=1.5, result_ttl=10, delay=0.25, id="i"))
    assert a[3] == 4
    assert a[4:] == ["delay", 250, "maxr", 2, "tmo", 1500, "rttl", 10_000]


def test_priority_and_idempotency_key_are_options() -> None:
    a = args(NewTask("t", priority=-3, idempotency_key="order-7", id="i"))
    assert a[3:] == [3, "prio", -3, "idem", "order-7", "ittl", 60_000]


def test_an_eta_is_sent_as_a_time_for_redis_to_judge() -> None:
    eta = datetime(2030, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    a = args(NewTask("t", eta=eta))
    assert a[3:] == [1, "at", round(eta.timestamp() * 1000)]


def test_an_expiry_is_sent_relative_for_redis_to_date_or_as_a_deadline() -> None:
    assert args(NewTask("t", expires_in=1.5))[3:] == [1, "expin", 1500]
    at = datetime.now(UTC) + timedelta(minutes=5)
    assert args(NewTask("t", expire_at=at))[3:] == [1, "exp", round(at.timestamp() * 1000)]


LATER = datetime(2099, 1, 1, tzinfo=UTC)  # far enough: the list is made at collection


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (NewTask("bad name"), "invalid task type"),
        (NewTask("t", expires_in=1, expire_at=LATER), "either expires_in or expire_at"),
        (NewTask("t", expires_in=0), "expires_in must be > 0 seconds"),
        (NewTask("t", expires_in=1, delay=2), "longer than the delay"),
        (NewTask("t", expire_at=datetime(2020, 1, 1, tzinfo=UTC)), "expire_at .* has passed"),
        (NewTask("t", expire_at=LATER, eta=LATER), "before the task is due"),
        (NewTask("t", expire_at=datetime(2099, 1, 1)), "expire_at must be timezone-aware"),
        (NewTask("t", {1, 2}), "not JSON-serializable"),
        (NewTask("t", delay=-1), "delay must be >= 0"),
        (NewTask("t", delay=1, eta=datetime.now(UTC)), "either delay or eta"),
        (NewTask("t", eta=datetime.now()), "timezone-aware"),
        (NewTask("t", max_retries=-1), "max_retries"),
        (NewTask("t", timeout=0), "timeout"),
        (NewTask("t", priority=10**9), "priority"),
        (NewTask("t", idempotency_key="k" * 300), "idempotency_key"),
    ],
)
def test_invalid_requests_are_refused_with_a_reason(task: NewTask, message: str) -> None:
    with pytest.raises(InvalidTask, match=message):
        args(task)


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(PayloadTooLarge, match="over the limit of 100 bytes"):
        args(NewTask("t", "x" * 200), limit=100)


def test_lease_replies_are_parsed() -> None:
    reply = [1500, 1, 4, 5, 6, 8, 9, 0, b"id1", 7, b"echo", b"{}", 2, b"", b"3000", b"", 12]
    fetched = decode_fetched("q", reply)
    assert fetched.next_event_ms == 1500
    assert not fetched.member_left
    held = (fetched.throttled, fetched.held_by_concurrency, fetched.held_by_breaker)
    assert held == (4, 5, 6)
    assert (fetched.held_by_pause, fetched.expired) == (8, 9)
    (lease,) = fetched.leases
    assert (lease.id, lease.token, lease.type, lease.attempt) == ("id1", b"7", "echo", 2)
    assert lease.max_retries is None
    assert lease.timeout_ms == 3000
    assert lease.waited_ms == 12


def test_a_dequeue_that_left_a_member_s_end_asks_for_the_next_at_once() -> None:
    fetched = decode_fetched("q", [1500, 0, 0, 0, 0, 0, 0, 1])
    assert fetched.member_left
    assert fetched.next_event_ms == 0


def test_task_hash_decodes_to_a_task() -> None:
    task = decode_task(
        "default",
        "x",
        {
            b"t": b"echo",
            b"s": b"f",
            b"d": b"[1]",
            b"att": b"4",
            b"c": b"1000",
            b"error": b'{"type":"E","message":"m","traceback":null}',
            b"prio": b"-2",
        },
    )
    assert task.status is TaskStatus.FAILED
    assert task.payload == [1]
    assert task.priority == -2
    assert task.attempts == 4
    assert task.created_at == datetime.fromtimestamp(1, UTC)
    assert task.error is not None
    assert task.error.message == "m"


def test_the_scripts_and_the_codec_agree_on_status_codes() -> None:
    common = (files("arqd.store") / "lua" / "common.lua").read_text()
    names = re.search(r"local function status_name\(code\)\n  return \(\{(.*?)\}\)", common, re.S)
    assert names is not None
    in_lua = dict(re.findall(r"(\w+) = '(\w+)'", names.group(1)))
    assert {code.decode(): status.value for status, code in STATUS_CODES.items()} == in_lua
    assert len(set(STATUS_CODES.values())) == len(TaskStatus)


ID = re.compile(r"^[A-Za-z0-9_-]{16}$")


def test_task_ids_are_url_safe_and_distinct() -> None:
    ids = [new_task_id() for _ in range(1000)] + task_ids(1000)  # several refills of the pool
    assert all(ID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_reuse_the_ids_its_parent_drew_ahead() -> None:
    new_task_id()  # the pool now holds ids drawn ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave at once
        os.write(write, " ".join(new_task_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_task_id() for _ in range(5)}
    assert len(child) == 5
    assert not child & parent
