"""``arqd workflow show`` draws a workflow's steps with each member's status (or prints it
as JSON, as the API does); ``arqd workflow cancel`` cancels it. Unknown ids and ended
workflows are one-line errors with exit code 1, wrong names exit 2."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from arqd import exits
from arqd.client import Client
from arqd.core.lease import Answer
from arqd.core.settings import Settings
from arqd.core.task import NewTask
from arqd.core.workflows import chain, group

BIN = Path(sys.executable).parent


async def arqd(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARQD_")}
    env |= {
        "REDIS_URL": settings.redis_url or "",
        "ARQD_KEY_PREFIX": settings.key_prefix,
        "COLUMNS": "200",
    }
    return await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "arqd"), "workflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def rows(out: str) -> list[list[str]]:
    """The table's rows (not its header), each a list of its cells."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in out.splitlines()
        if line.count("│") == 5
    ]


def one_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    return line


async def test_show_draws_each_step_with_its_members(
    client: Client, api_settings: Settings
) -> None:
    flow = chain(
        group([NewTask("echo", 1), NewTask("echo", 2)], on_failure="continue"),
        NewTask("echo"),
    )
    state = await client.workflows.start(flow, queue="flows", workflow_id="wf-show")

    done = await arqd(api_settings, "show", "wf-show")

    assert done.returncode == 0, done.stderr
    assert "Workflow wf-show on flows: running, step 1 of 2" in done.stdout
    assert "┃ step ┃ kind" in done.stdout
    assert rows(done.stdout) == [
        ["▶ 1", "group of 2, on failure: continue", "wf-show.0.0", "queued"],
        ["", "", "wf-show.0.1", "queued"],
        ["2", "task", "wf-show.1.0", "pending"],
    ]
    as_json = await arqd(api_settings, "show", "wf-show", "--queue", "flows", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == state.to_dict()


async def test_show_lists_the_error_callbacks_of_a_failed_workflow(
    client: Client, api_settings: Settings
) -> None:
    state = await client.workflows.group(
        [NewTask("charge", 1)],
        on_failure="fail",
        callback=NewTask("ship"),
        on_error=NewTask("alert"),
    )
    store = client.store
    (lease,) = (await store.leases.dequeue("default", 1, "w")).leases
    await store.leases.finish("default", [Answer(lease, "failed", b'{"type":"E","message":"x"}')])

    done = await arqd(api_settings, "show", state.id)

    assert done.returncode == 0, done.stderr
    assert f"Workflow {state.id} on default: failed, step 1 of 2" in done.stdout
    assert rows(done.stdout) == [
        ["1", "group of 1, on failure: fail", f"{state.id}.0.0", "failed"],
        ["2", "task", f"{state.id}.1.0", "pending"],
        ["on error", "task", f"{state.id}.err.1.0", "queued"],
    ]


async def test_cancel_cancels_once(client: Client, api_settings: Settings) -> None:
    other = await client.workflows.chain(NewTask("echo", 1), NewTask("echo"), queue="flows")
    state = await client.workflows.start(
        chain(NewTask("echo", 1), NewTask("echo")), queue="flows", workflow_id="wf-cancel"
    )

    done = await arqd(api_settings, "cancel", "wf-cancel")

    assert done.returncode == 0, done.stderr
    assert "Workflow wf-cancel on flows: cancelled" in done.stdout
    assert [row[2:] for row in rows(done.stdout)] == [
        ["wf-cancel.0.0", "cancelled"],
        ["wf-cancel.1.0", "pending"],
    ]
    assert (await client.workflows.get(state.id)).status == "cancelled"
    assert (await client.workflows.get(other.id)).status == "running"  # only the one named
    again = await arqd(api_settings, "cancel", "wf-cancel", "--json")
    line = one_error(again, exits.NO)
    assert line == "error: workflow wf-cancel has already ended (cancelled)"


async def test_unknown_ids_and_wrong_names_are_one_line_errors(
    client: Client, api_settings: Settings
) -> None:
    await client.workflows.chain(NewTask("echo", 1), queue="flows")  # a queue to look in
    for command in ("show", "cancel"):
        line = one_error(await arqd(api_settings, command, "no-such-flow"), exits.NO)
        assert line == "error: no workflow with id 'no-such-flow' (it may have expired)"
    elsewhere = await arqd(api_settings, "show", "no-such-flow", "--queue", "default")
    assert one_error(elsewhere, exits.NO).startswith("error: no workflow with id")
    bad_queue = await arqd(api_settings, "show", "wf", "--queue", "no spaces")
    assert "invalid queue" in one_error(bad_queue, exits.USAGE)
    bad_id = await arqd(api_settings, "cancel", "bad id!")
    assert "invalid task id" in one_error(bad_id, exits.USAGE)
