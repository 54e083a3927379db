"""What the client gives the dashboard: a task's own events, and the audit trail."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from arqd import demo
from arqd.client import Client
from arqd.store.audit import Audit
from conftest import StartWorker


async def test_a_task_history_holds_its_own_events_oldest_first(
    client: Client, start_worker: StartWorker
) -> None:
    await start_worker(demo.registry)
    before = await client.enqueue("echo", "before")
    await client.wait(before.id, timeout=10)
    task = await client.enqueue("fail", None, max_retries=0)
    other = await client.enqueue("echo", "other")
    await client.wait(task.id, timeout=10)
    await client.wait(other.id, timeout=10)
    await client.retry(task.id)
    finished = await client.wait(task.id, timeout=10)
    history = await client.task_history(finished)
    assert [e.fields[b"event"] for e in history] == [
        b"queued",
        b"active",
        b"failed",
        b"queued",
        b"active",
        b"failed",
    ]
    assert {e.fields[b"task"] for e in history} == {task.id.encode()}
    assert [e.sort_key for e in history] == sorted(e.sort_key for e in history)


async def test_a_snapshot_from_enqueue_finds_its_first_event_too(client: Client) -> None:
    """A snapshot's created_at is the caller's clock, which may run ahead of Redis's."""
    task = await client.enqueue("echo", None, delay=600)
    assert task.created_at is not None
    ahead = dataclasses.replace(task, created_at=task.created_at + timedelta(seconds=5))
    history = await client.task_history(ahead)
    assert [e.fields[b"event"] for e in history] == [b"scheduled"]


async def test_the_audit_trail_lists_actions_newest_first_and_is_capped(client: Client) -> None:
    for number in range(3):
        await client.audit("key:abc", "cancel", f"task:default:{number}", 1)
    entries = await client.audit_log(2)
    assert [(e.actor, e.action, e.target, e.count) for e in entries] == [
        ("key:abc", "cancel", "task:default:2", 1),
        ("key:abc", "cancel", "task:default:1", 1),
    ]
    small = Audit(client.store.redis, client.store.keys, cap=1)
    for number in range(300):  # XADD MAXLEN ~ trims whole nodes: past a node's 100 entries
        await small.append("open", "retry", f"task:q:{number}", 1)
    assert await client.store.redis.xlen(client.store.keys.audit_events()) < 200
