"""Workers: declare task types in a Registry, run them with a Worker."""

from arqd.worker.attempt import TaskContext
from arqd.worker.registry import Registry, TaskType
from arqd.worker.worker import Worker

__all__ = ["Registry", "TaskContext", "TaskType", "Worker"]
