"""On a Redis Cluster, a failover of the master holding a busy queue during a run (a
manual ``CLUSTER FAILOVER``, and a master killed): the workers and the API follow the
slot to its new master, every task completes, the API answers 503 meanwhile, never 500,
and with replica acks no acknowledged task is lost."""

from __future__ import annotations

import pytest

from arqd.client import Client
from arqd.core.settings import Settings
from conftest import WorkerProcess
from failovers import kill_a_master_under_load, run_through_a_failover
from topologies import ClusterSetup

pytestmark = pytest.mark.topologies("cluster")


async def test_workers_follow_a_failover_and_every_task_completes(
    client: Client,
    settings: Settings,
    cluster_setup: ClusterSetup,
    workers: list[WorkerProcess],
) -> None:
    slot = client.slot("default")
    old = cluster_setup.master_port_of_slot(slot)
    moved: list[int] = []
    await run_through_a_failover(
        client, settings, workers, lambda: moved.append(cluster_setup.failover(slot))
    )
    assert moved[0] != old
    assert await client.placement("default") == (slot, f"127.0.0.1:{moved[0]}")


async def test_a_killed_master_loses_no_acknowledged_task_and_the_api_answers_503(
    client: Client, settings: Settings, cluster_setup: ClusterSetup, workers: list[WorkerProcess]
) -> None:
    slot = client.slot("default")
    await kill_a_master_under_load(
        settings,
        cluster_setup.url,
        workers,
        lambda: cluster_setup.kill_master(slot),
        cluster_setup.revive,
    )
