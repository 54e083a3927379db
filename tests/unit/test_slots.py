import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from arqd.core.slots import direct_init
from arqd.core.task import Task, TaskStatus
from arqd.store.codec import Answer, Lease


@dataclass(frozen=True, slots=True)
class Plain:
    name: str
    count: int = 0
    tags: list[str] = field(default_factory=list)


@direct_init
@dataclass(frozen=True, slots=True)
class Direct:
    name: str
    count: int = 0
    tags: list[str] = field(default_factory=list)


def fields_of(obj: object) -> tuple[object, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("a",), {}), (("a", 3), {}), ((), {"name": "a", "tags": ["x"]}), (("a",), {"count": 2})],
)
def test_the_same_instance_as_the_dataclass_init_makes(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    assert fields_of(Direct(*args, **kwargs)) == fields_of(Plain(*args, **kwargs))


def test_each_instance_gets_its_own_default_from_the_factory() -> None:
    one, two = Direct("a"), Direct("b")
    one.tags.append("x")
    assert two.tags == []


def test_the_instance_stays_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Direct("a").count = 1  # type: ignore[misc]


def test_bad_calls_fail_as_the_dataclass_init_does() -> None:
    with pytest.raises(TypeError):
        Direct()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Direct("a", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Direct("a", 1, [], "extra")  # type: ignore[call-arg]


def test_classes_it_cannot_serve_are_refused() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        name: str

    @dataclass(frozen=True, slots=True)
    class PostInit:
        name: str

        def __post_init__(self) -> None:
            pass

    for cls in (NoSlots, PostInit):
        with pytest.raises(TypeError):
            direct_init(cls)


def test_arqds_per_task_classes_use_it() -> None:
    now = datetime.now(UTC)
    task = Task(id="t1", type="noop", queue="default", status=TaskStatus.QUEUED, created_at=now)
    assert (task.attempts, task.trace_context, task.created_at) == (0, {}, now)
    lease = Lease("default", "t1", b"1", "noop", b"{}", 1, None, None, None)
    assert (lease.waited_ms, Answer(lease, "succeeded").value) == (0, b"")
