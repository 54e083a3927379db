from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from arqd.core.errors import ConfigurationError
from arqd.worker import Registry, TaskContext


class Email(BaseModel):
    to: str


def test_decorator_declares_types_with_options() -> None:
    registry = Registry()

    @registry.task(max_retries=1, timeout=2.0)
    async def send(payload: Email) -> None: ...

    @registry.task("custom.name")
    def plain(payload: Any, ctx: TaskContext) -> None: ...

    send_type, plain_type = registry.get("send"), registry.get("custom.name")
    assert send_type is not None
    assert plain_type is not None
    assert send_type.is_async
    assert (send_type.max_retries, send_type.timeout) == (1, 2.0)
    assert not plain_type.is_async
    assert plain_type.wants_context
    assert plain_type.payload_adapter is None
    assert send_type.payload_adapter is not None
    with pytest.raises(ValidationError):
        send_type.payload_adapter.validate_python({"to": 1})


def test_duplicate_and_invalid_declarations_are_refused() -> None:
    registry = Registry()
    registry.add(lambda p: p, "one")
    with pytest.raises(ConfigurationError, match="declared twice"):
        registry.add(lambda p: p, "one")
    with pytest.raises(ConfigurationError, match="must take the payload"):
        registry.add(lambda: None, "two")


def test_type_policy_falls_back_to_defaults() -> None:
    registry = Registry()
    declared = registry.add(lambda p: p, "x", base_delay=0.5)
    policy = declared.policy(3, 1.0, 30.0)
    assert (policy.max_retries, policy.base_delay, policy.max_delay) == (3, 0.5, 30.0)
