"""The wrong-key budget of one API replica against a real Redis: concurrent guesses from one
address are compared one Redis verdict at a time, so none slips past a spent budget."""

from __future__ import annotations

import asyncio

from starlette.types import Scope

from arqd.api.auth_failures import AuthFailureLimit
from arqd.api.state import ApiState
from arqd.client import Client
from arqd.core.settings import Settings


def request_from(address: str) -> Scope:
    return {"type": "http", "method": "GET", "path": "/queues", "client": (address, 40000)}


def limit_on(settings: Settings, client: Client, per_minute: int) -> AuthFailureLimit:
    state = ApiState(settings)
    state.attach(client, client)
    return AuthFailureLimit(state, per_minute)


async def test_an_address_over_its_budget_is_refused_until_its_next_token(
    settings: Settings, client: Client
) -> None:
    limit = limit_on(settings, client, per_minute=3)
    guesser, bystander = request_from("10.0.0.1"), request_from("10.0.0.2")
    assert not limit.watching()
    assert [await limit.failed(guesser) for _ in range(3)] == [None, None, None]
    refused = await limit.failed(guesser)
    assert refused is not None
    assert 1 <= refused.retry_after <= 20  # a token every 20 s
    assert limit.watching()
    assert await limit.before_compare(guesser) is not None
    assert await limit.before_compare(bystander) is None


async def test_a_key_waits_for_the_verdict_on_a_wrong_key_already_asked_for(
    settings: Settings, client: Client
) -> None:
    limit = limit_on(settings, client, per_minute=2)
    guesser = request_from("10.0.0.1")
    assert [await limit.failed(guesser) for _ in range(2)] == [None, None]  # budget spent

    asking = asyncio.create_task(limit.failed(guesser))
    # One turn of the event loop: the task sends its token request to Redis, and cannot
    # have the answer yet (that takes another turn, to read the socket).
    await asyncio.sleep(0)
    assert limit.watching()
    assert not asking.done()
    # Its verdict is not in yet, but the next key from the address is not compared before
    # it is: the budget turns out spent, so that key is refused too.
    waited = await limit.before_compare(guesser)
    assert waited is not None
    assert await asyncio.wait_for(asking, 10) is not None
    assert await limit.before_compare(request_from("10.0.0.2")) is None
