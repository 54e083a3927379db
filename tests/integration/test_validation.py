"""Bad input is refused at enqueue with nothing written; what a worker cannot run (an
unknown type, a payload its model rejects, a result that is not JSON) fails at once,
without retries, with an error that says why."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from arqd.client import Client, NewTask
from arqd.core.errors import InvalidTask, PayloadTooLarge
from arqd.core.task import TaskStatus
from arqd.worker import Registry
from conftest import StartWorker

pytestmark = pytest.mark.topologies()  # the engine's behaviour on every topology


class Email(BaseModel):
    to: str


async def test_unknown_types_and_invalid_payloads_fail_without_retries(
    client: Client, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task()
    async def send(payload: Email) -> str:
        return payload.to

    await start_worker(registry)
    unknown = await client.wait((await client.enqueue("nobody_knows_me")).id, timeout=10)
    assert unknown.status is TaskStatus.FAILED
    assert unknown.error is not None
    assert unknown.error.type == "UnknownTaskType"
    assert "nobody_knows_me" in unknown.error.message
    invalid = await client.wait((await client.enqueue("send", {"too": "x"})).id, timeout=10)
    assert (invalid.status, invalid.attempts) == (TaskStatus.FAILED, 1)
    assert invalid.error is not None
    assert invalid.error.type == "InvalidPayload"
    assert "to" in invalid.error.message
    ok = await client.wait((await client.enqueue("send", {"to": "a@b"})).id, timeout=10)
    assert ok.result == "a@b"


async def test_results_that_are_not_json_fail_clearly(
    client: Client, start_worker: StartWorker
) -> None:
    registry = Registry()

    @registry.task()
    async def weird(payload: None) -> object:
        return object()

    await start_worker(registry)
    done = await client.wait((await client.enqueue("weird")).id, timeout=10)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None
    assert done.error.type == "InvalidResult"


async def test_bad_input_is_refused_and_nothing_is_written(client: Client) -> None:
    with pytest.raises(PayloadTooLarge):
        await client.enqueue("t", "x" * (client.settings.max_payload_bytes + 1))
    with pytest.raises(InvalidTask, match="not JSON-serializable"):
        await client.enqueue("t", {"when": object()})
    with pytest.raises(InvalidTask, match="invalid task type"):
        await client.enqueue("no spaces allowed")
    with pytest.raises(InvalidTask, match="invalid queue"):
        await client.enqueue("t", queue="{bad}")
    with pytest.raises(InvalidTask):  # one bad task in a batch: none is written
        await client.enqueue_many([NewTask("ok", 1), NewTask("ok", 2), NewTask("bad name", 3)])
    assert await client.stats() == []
    assert (await client.list_tasks()).tasks == []
