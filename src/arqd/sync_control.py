"""``SyncClient.workflows``, ``.schedules`` and ``.queues``: the async client's control
objects (``WorkflowControl``, ``ScheduleControl``, ``QueueControl``), blocking.

Each method is the async one, run on the SyncClient's event loop: ``blocking`` takes its
name, signature, docstring and types from it, so the two cannot drift apart.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from arqd.core.schedules import ScheduleState
from arqd.queue_control import QueueControl
from arqd.schedule_control import ScheduleControl
from arqd.workflow_control import WorkflowControl

C = TypeVar("C")
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Runner(Protocol):
    """Runs a coroutine to its end and returns its result (``SyncClient._run``)."""

    def __call__(self, coro: Coroutine[Any, Any, T], /) -> T: ...


class Blocking(Generic[C]):
    """An async control object ``control`` whose methods ``run`` blocks on."""

    def __init__(self, control: C, run: Runner) -> None:
        self.control = control
        self.run = run


class blocking(Generic[C, P, R]):  # lower case: it reads as a decorator
    """The async method ``method`` of ``C``, as a blocking method of a ``Blocking[C]``."""

    def __init__(self, method: Callable[Concatenate[C, P], Coroutine[Any, Any, R]]) -> None:
        self.method = method
        self.__doc__ = method.__doc__
        signature = inspect.signature(method)  # what help() shows: the method, bound
        self.signature = signature.replace(parameters=list(signature.parameters.values())[1:])

    @overload
    def __get__(self, owner: None, kind: type[Any] | None = None) -> blocking[C, P, R]: ...

    @overload
    def __get__(self, owner: Blocking[C], kind: type[Any] | None = None) -> Callable[P, R]: ...

    def __get__(
        self, owner: Blocking[C] | None, kind: type[Any] | None = None
    ) -> blocking[C, P, R] | Callable[P, R]:
        if owner is None:
            return self
        run = owner.run
        # Looked up on the object, so that a subclass's override is the one run.
        method: Callable[P, Coroutine[Any, Any, R]] = getattr(owner.control, self.method.__name__)

        @functools.wraps(self.method)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return run(method(*args, **kwargs))

        call.__signature__ = self.signature  # type: ignore[attr-defined]
        return call


class SyncWorkflowControl(Blocking[WorkflowControl]):
    """``SyncClient.workflows``: ``WorkflowControl``, blocking."""

    start = blocking(WorkflowControl.start)
    chain = blocking(WorkflowControl.chain)
    group = blocking(WorkflowControl.group)
    get = blocking(WorkflowControl.get)
    cancel = blocking(WorkflowControl.cancel)
    retry = blocking(WorkflowControl.retry)


class SyncScheduleControl(Blocking[ScheduleControl]):
    """``SyncClient.schedules``: ``ScheduleControl``, blocking."""

    upsert = blocking(ScheduleControl.upsert)
    get = blocking(ScheduleControl.get)
    list = blocking(ScheduleControl.list)
    pause = blocking(ScheduleControl.pause)
    resume = blocking(ScheduleControl.resume)
    delete = blocking(ScheduleControl.delete)
    trigger = blocking(ScheduleControl.trigger)

    def update(self, name: str, **changes: Any) -> ScheduleState:
        """Change some fields of a schedule (as ``Schedule``'s; the name stays)."""
        # Written out: ``**changes`` could be named ``self``, which ``blocking`` refuses.
        return self.run(self.control.update(name, **changes))


class SyncQueueControl(Blocking[QueueControl]):
    """``SyncClient.queues``: ``QueueControl``, blocking."""

    pause = blocking(QueueControl.pause)
    resume = blocking(QueueControl.resume)
    paused = blocking(QueueControl.paused)
    states = blocking(QueueControl.states)
