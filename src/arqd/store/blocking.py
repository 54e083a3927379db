"""Enqueueing from blocking code, without an event loop: the same enqueue script as
``Store.enqueue``, sent with sync redis-py on a connection each thread keeps.

A blocking caller pays for one socket write and one read per call, where handing the call
to an event loop in another thread (as ``SyncClient`` does for everything else) costs two
thread switches more. The arguments and replies are ``codec``'s, as in the async store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import redis
from redis.connection import AbstractConnection
from redis.exceptions import AskError, ClusterDownError, NoScriptError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from arqd.core.errors import ReplicasBehind
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.store import codec, scripts
from arqd.store.codec import Enqueued
from arqd.store.connection import connect_sync
from arqd.store.keys import Keys
from arqd.store.packing import pack
from arqd.store.tasks import QueueNames

CLUSTER_RESENDS = 4  # on a cluster: tries after a redirection or a lost master


class BlockingEnqueuer:
    """``enqueue`` for threads: safe to share, each thread uses a connection of its own
    (on a cluster, the cluster client's connection to the queue's master)."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.redis = connect_sync(url)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[AbstractConnection] = []  # one per thread that enqueued
        self._names = QueueNames()

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.disconnect()  # type: ignore[no-untyped-call]
            self._connections.clear()
        self.redis.close()

    def enqueue(self, tasks: Sequence[NewTask]) -> list[Enqueued]:
        """Enqueue tasks, one script call per queue; (id, created) each, in order."""
        s = self.settings
        calls = codec.plan_enqueue(tasks, s.queue, s.max_payload_bytes, s.idempotency_ttl)
        # Queue names go into their set before the queues' first enqueue (see QueueNames).
        with self._lock:
            fresh = [c.queue for c in calls if self._names.due(c.queue)]
        if fresh:
            self.redis.sadd(self.keys.queues(), *fresh)
            with self._lock:
                for queue in fresh:
                    self._names.added(queue)
        replies = [
            self._run(call.queue, [s.events_max, len(call.positions), *call.args]) for call in calls
        ]
        lost = [c.queue for c, r in zip(calls, replies, strict=True) if codec.had_no_stream(r)]
        if lost:
            self.redis.sadd(self.keys.queues(), *lost)
        return codec.in_batch_order(calls, replies, len(tasks))

    def _run(self, queue: str, args: list[Any]) -> Any:
        """The enqueue script, as ``Scripts.run_acked`` runs it: EVALSHA, or EVAL when
        Redis does not have it cached; with replica acks asked for, then ``WAIT`` on the
        same connection (it covers what that connection wrote)."""
        keys = [self.keys.queue(queue)]
        s = self.settings
        wait = [("WAIT", s.replica_acks, s.replica_ack_timeout)] if s.replica_acks else []
        send = self._send if isinstance(self.redis, redis.Redis) else self._send_cluster
        name = codec.enqueue_script(args)
        try:
            answers = send([tuple(scripts.evalsha(name, keys, args)), *wait])
        except NoScriptError:
            answers = send([tuple(scripts.eval_source(name, keys, args)), *wait])
        if wait and int(answers[1]) < s.replica_acks:
            raise ReplicasBehind(int(answers[1]), s.replica_acks, s.replica_ack_timeout)
        return answers[0]

    def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Commands on this thread's connection, written together; their replies (an error
        reply raised). A broken connection is dropped and the commands go through
        redis-py's own path, on one pooled connection, which reconnects and retries as
        configured (the enqueue script finds a task it already wrote)."""
        connection = self._connection()
        try:
            packed = [pack(command) for command in commands]
            connection.send_packed_command(packed, False)  # type: ignore[no-untyped-call]
            replies = [_reply(connection) for _ in commands]
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self._forget(connection)
            if isinstance(exc, RedisTimeoutError):
                raise  # the command may have run: not sent again
            assert isinstance(self.redis, redis.Redis)
            pipe = self.redis.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            return pipe.execute()
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _send_cluster(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Commands on one connection to the master of the first one's key (the enqueue
        script's queue: its KEYS[1]), sent again after a redirection or a lost master."""
        cluster = self.redis
        assert isinstance(cluster, redis.RedisCluster)
        key = commands[0][3]
        for attempt in range(CLUSTER_RESENDS):
            node = cluster.get_node_from_key(key)  # type: ignore[no-untyped-call]
            pipe = cluster.get_redis_connection(node).pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            try:
                return pipe.execute()
            except (AskError, TryAgainError, ClusterDownError, RedisConnectionError):
                if attempt == CLUSTER_RESENDS - 1:
                    raise
                time.sleep(0.1 * 2**attempt)
                cluster.nodes_manager.initialize()
        raise AssertionError("unreachable")

    def _connection(self) -> AbstractConnection:
        """This thread's connection, made and connected as the pool would (behind Sentinel,
        ``connect`` asks the sentinels for the master; sending on a connection never
        connected would go to the default address instead)."""
        connection: AbstractConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            assert isinstance(self.redis, redis.Redis)
            connection = cast(AbstractConnection, self.redis.connection_pool.make_connection())
            connection.connect()  # type: ignore[no-untyped-call]
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _forget(self, connection: AbstractConnection) -> None:
        """Drop a broken connection: the thread's next call makes a new one."""
        connection.disconnect()  # type: ignore[no-untyped-call]
        self._local.connection = None
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)


def _reply(connection: AbstractConnection) -> Any:
    """The next reply; an error reply as a value, so every reply is read before one is
    raised (the connection stays in step)."""
    try:
        return connection.read_response()
    except ResponseError as exc:
        return exc
