"""Workers: declare task types in a Registry, run them with a Worker; handlers that talk
to Redis can share one auto-pipelined connection with PipelinedRedis."""

from arqd.store.pipelined import PipelinedRedis
from arqd.worker.attempt import TaskContext
from arqd.worker.registry import Registry, TaskType
from arqd.worker.worker import Worker

__all__ = ["PipelinedRedis", "Registry", "TaskContext", "TaskType", "Worker"]
