"""Every Redis key arqd uses is named here, and only here.

All keys of one queue share the hash tag ``{queue}``, so each Lua script touches a single
Cluster slot. Scripts receive the queue prefix as KEYS[1] and append the suffixes listed in
``lua/common.lua``; the builders below produce the same names for Python-side reads.

The keys of no queue are placed so that no command spans two slots on a Redis Cluster:
the worker registry shares the tag ``{workers}`` (one transaction writes a record and its
score), named breakers ``{breakers}`` (one script changes a breaker, the set of names and
their events), and each rate-limit scope ``{rl:SCOPE}`` (one script takes tokens of
several keys). The set of queue names and the audit and rate-limit event streams are
single keys, each written by single-key commands: each lands on a slot of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.crc import key_slot


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one application prefix (``ARQD_KEY_PREFIX``)."""

    prefix: str = "arqd"

    def queue(self, queue: str) -> str:
        """The prefix of every key of ``queue``: the KEYS[1] of each script."""
        return f"{self.prefix}:{{{queue}}}:"

    def slot(self, queue: str) -> int:
        """The Redis Cluster hash slot of every key of ``queue`` (they share its tag)."""
        return int(key_slot(self.queue(queue).encode()))

    def task(self, queue: str, task_id: str) -> str:
        return f"{self.queue(queue)}t:{task_id}"

    def task_log(self, queue: str, task_id: str, attempt: int) -> str:
        """The log lines of one attempt of a task (a capped list; see ``reports``)."""
        return f"{self.queue(queue)}lg:{task_id}:{attempt}"

    def ready(self, queue: str, priority: int | str) -> str:
        return f"{self.queue(queue)}q:{priority}"

    def priorities(self, queue: str) -> str:
        return f"{self.queue(queue)}prios"

    def index(self, queue: str, name: str) -> str:
        """``scheduled``, ``active``, ``succeeded``, ``failed``, ``cancelled`` or ``expired``."""
        return f"{self.queue(queue)}{name}"

    def idempotency(self, queue: str, key: str) -> str:
        """The task id an idempotency key of ``queue`` names, while the key lives."""
        return f"{self.queue(queue)}idem:{key}"

    def dedupe(self, queue: str, key: str) -> str:
        """The task a dedupe key of ``queue`` kept (see ``arqd.core.dedupe``)."""
        return f"{self.queue(queue)}dd:{key}"

    def events(self, queue: str) -> str:
        return f"{self.queue(queue)}events"

    def wake(self, queue: str) -> str:
        return f"{self.queue(queue)}wake"

    def type_breaker(self, queue: str, task_type: str) -> str:
        """A task type's circuit breaker (kept by the dequeue and finish scripts)."""
        return f"{self.queue(queue)}cb:{task_type}"

    def type_breakers(self, queue: str) -> str:
        """The set of ``queue``'s task types that have a breaker record."""
        return f"{self.queue(queue)}cbs"

    def held_back(self, queue: str) -> str:
        """The set of what holds ``queue``'s tasks back: its task types whose breaker is
        open or half-open, and its pauses (``|*`` the whole queue, ``|TYPE`` a task type),
        read by the dequeue script in one command."""
        return f"{self.queue(queue)}cbopen"

    def pauses(self, queue: str) -> str:
        """Why each pause of ``queue`` was made: field ``*`` (the whole queue) or a task
        type, each a JSON record (reason, at, by). Kept by the pause and resume scripts."""
        return f"{self.queue(queue)}pauses"

    def throughput(self, queue: str, hour: int) -> str:
        """Tasks that succeeded and failed in each minute of ``hour`` (hours since the
        epoch, by Redis's clock), kept by the finish script (see ``history``)."""
        return f"{self.queue(queue)}m:{hour}"

    def schedule(self, queue: str, name: str) -> str:
        """One schedule's hash: definition, version, next and last runs (see schedules)."""
        return f"{self.queue(queue)}sc:{name}"

    def schedule_times(self, queue: str) -> str:
        """Sorted set of ``queue``'s schedules by next fire time (ms); paused ones leave it."""
        return f"{self.queue(queue)}scnext"

    def workflow(self, queue: str, workflow_id: str) -> str:
        """One workflow's hash: status, steps, the current step's counters (see workflows)."""
        return f"{self.queue(queue)}wf:{workflow_id}"

    def workflow_outcomes(self, queue: str, workflow_id: str) -> str:
        """A workflow's members' outcomes, one byte each (see workflows)."""
        return f"{self.queue(queue)}wf:{workflow_id}:o"

    def workflow_outbox(self, queue: str, workflow_id: str) -> str:
        """A workflow's members to start or cancel on other queues (see ``relay``)."""
        return f"{self.queue(queue)}wf:{workflow_id}:out"

    def workflow_remote(self, queue: str, workflow_id: str) -> str:
        """Results of a workflow's members on other queues, and their generations."""
        return f"{self.queue(queue)}wf:{workflow_id}:r"

    def outboxes(self, queue: str) -> str:
        """The set of ``queue``'s workflows whose outbox holds entries."""
        return f"{self.queue(queue)}wfout"

    def notices(self, queue: str) -> str:
        """How ``queue``'s members of other queues' workflows ended (a hash by member id),
        until the relay applies them on their workflow's queue (see ``relay``)."""
        return f"{self.queue(queue)}wfn"

    def schedules(self) -> str:
        """Hash of every schedule's name to the queue that holds it (a key of its own)."""
        return f"{self.prefix}:schedules"

    def queues(self) -> str:
        """Set of every queue name ever enqueued to."""
        return f"{self.prefix}:queues"

    def workers(self) -> str:
        """Sorted set of live worker ids, scored by last heartbeat (ms). The registry's keys
        share one hash tag: a worker's record and its score change in one transaction."""
        return f"{self.prefix}:{{workers}}"

    def worker(self, worker_id: str) -> str:
        """One worker's description (JSON), expiring unless renewed."""
        return f"{self.prefix}:{{workers}}:{worker_id}"

    def breaker(self, name: str) -> str:
        """A named circuit breaker's hash; all named breakers share one hash tag."""
        return f"{self.prefix}:{{breakers}}:b:{name}"

    def breakers(self) -> str:
        """The set of named breakers."""
        return f"{self.prefix}:{{breakers}}:names"

    def breaker_events(self) -> str:
        """Transitions of named breakers (a capped stream)."""
        return f"{self.prefix}:{{breakers}}:events"

    def rate_limit(self, scope: str, subject: str) -> str:
        """A GCRA rate-limit state, e.g. scope ``http`` and an API key's digest; a scope's
        keys share a hash tag, so one script call can take tokens from several."""
        return f"{self.prefix}:{{rl:{scope}}}:{subject}"

    def rate_limit_events(self) -> str:
        """Requests refused by the HTTP rate limit (a capped stream)."""
        return f"{self.prefix}:ratelimit:events"

    def audit_events(self) -> str:
        """What operators did through the dashboard (a capped stream)."""
        return f"{self.prefix}:audit:events"
