"""Every error arqd raises on purpose derives from one root.

ArqdError
├── ConfigurationError        a setting is missing or invalid; names the variable
├── EmbeddedServerError       the embedded Redis-compatible server could not start
├── BreakerNotFound           no circuit breaker by that name has recorded a failure
├── InvalidSchedule           a schedule's cron expression, interval, zone or policy is wrong
├── ScheduleNotFound          no schedule by that name
├── WorkflowNotFound          no workflow with that id (it may have expired)
├── TaskError                 something about one task
│   ├── TaskNotFound          no task with that id (it may have expired)
│   ├── InvalidTask           a request to enqueue is malformed (name, payload, options)
│   │   └── PayloadTooLarge   the JSON payload exceeds the configured limit
│   ├── InvalidTransition     e.g. retrying a task that has not failed
│   └── TaskWaitTimeout       a wait for a result ran out of time
└── HandlerError              raised by handlers to steer the retry policy
    ├── Retry                 retry this attempt after ``delay`` seconds (or the backoff)
    └── NonRetryable          fail at once, no retries left or not
"""

from __future__ import annotations


class ArqdError(Exception):
    """Root of every error arqd raises on purpose."""


class ConfigurationError(ArqdError):
    """A setting is missing or has a value arqd cannot use."""


class EmbeddedServerError(ArqdError):
    """The embedded Redis-compatible server could not be started or reached."""


class BreakerNotFound(ArqdError):
    """No circuit breaker by this name has recorded a failure."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no breaker named {name!r} (breakers appear after their first failure)")


class InvalidSchedule(ArqdError):
    """A schedule cannot be made as given; the message says what to change."""


class ScheduleNotFound(ArqdError):
    """No schedule has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}")


class TaskError(ArqdError):
    """An error about one task."""


class WorkflowNotFound(ArqdError):
    """No workflow has this id; ended workflows expire with their members' results."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"no workflow with id {workflow_id!r} (it may have expired)")


class TaskNotFound(TaskError):
    """No task has this id; finished tasks expire after their result TTL."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r} (it may never have existed or expired)")
        self.task_id = task_id


class InvalidTask(TaskError):
    """A request to enqueue a task is malformed."""


class PayloadTooLarge(InvalidTask):
    """The serialized payload is larger than the configured limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"payload is {size} bytes, over the limit of {limit} bytes "
            "(raise ARQD_MAX_PAYLOAD_BYTES, or store large data elsewhere and pass a reference)"
        )
        self.size = size
        self.limit = limit


class InvalidTransition(TaskError):
    """The task is not in a state that allows the requested change."""


class TaskWaitTimeout(TaskError):
    """The task did not finish within the time the caller waited."""


class ReplicasBehind(ArqdError):
    """A write the caller asked to survive a failover (``ARQD_REPLICA_ACKS``) reached the
    master, but fewer replicas than asked acknowledged it in time. It is not undone: a
    failover now could lose it, and sending it again is safe."""

    def __init__(self, acked: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"written, but acknowledged by {acked} of the {wanted} replica(s) asked for within "
            f"{timeout_ms} ms (ARQD_REPLICA_ACKS): a failover now could lose it; "
            "sending it again is safe"
        )
        self.acked = acked
        self.wanted = wanted


class HandlerError(ArqdError):
    """Base of the errors a handler raises to steer what happens next."""


class Retry(HandlerError):
    """Retry the task; after ``delay`` seconds, or after the backoff delay when None."""

    def __init__(self, delay: float | None = None, message: str = "retry requested") -> None:
        super().__init__(message)
        self.delay = delay


class CircuitOpen(Retry):
    """A circuit breaker refused the call; retry after ``delay`` seconds."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(
            retry_after, f"circuit breaker {name!r} is open; retry in {retry_after:.1f} s"
        )
        self.name = name


class NonRetryable(HandlerError):
    """Fail the task at once: retrying cannot help (bad input, a permanent refusal)."""
