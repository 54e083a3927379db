"""``arqd enqueue`` prints a task exactly as the API answers it, and ends with the exit code
the README gives for each outcome of ``--wait``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from arqd import exits
from arqd.core.settings import Settings
from e2e.live import AUTH, LiveServer

BIN = Path(sys.executable).parent
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def enqueue(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARQD_")}
    env |= {"REDIS_URL": settings.redis_url or "", "ARQD_KEY_PREFIX": settings.key_prefix}
    return subprocess.run(
        [BIN / "arqd", "enqueue", *args], env=env, capture_output=True, text=True, timeout=60
    )


def printed(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    task: dict[str, Any] = json.loads(done.stdout)
    return task


def from_api(live: LiveServer, task_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=live.url, headers=AUTH, timeout=10) as http:
        answer = http.get(f"/tasks/{task_id}")
    assert answer.status_code == 200
    task: dict[str, Any] = answer.json()
    return task


def test_a_finished_task_is_printed_exactly_as_the_api_shows_it(
    live: LiveServer, api_settings: Settings
) -> None:
    done = enqueue(
        api_settings, "echo", "--payload", '{"hello": "world"}', "--wait",
        "--max-retries", "2", "--task-timeout", "2.5", "--priority", "3",
    )  # fmt: skip
    assert done.returncode == exits.OK, done.stderr
    task = printed(done)
    assert task == from_api(live, task["id"])
    assert (task["status"], task["result"]) == ("succeeded", {"hello": "world"})
    assert (task["max_retries"], task["timeout"], task["priority"]) == (2, 2.5, 3)
    for name in ("created_at", "scheduled_at", "started_at", "finished_at"):
        assert task[name] is None or TIME.match(task[name]), (name, task[name])
    assert TIME.match(task["finished_at"])


def test_a_task_just_enqueued_is_printed_as_post_tasks_answers(
    live: LiveServer, api_settings: Settings
) -> None:
    done = enqueue(api_settings, "echo", "--delay", "600", "--idempotency-key", "k1")
    assert done.returncode == exits.OK, done.stderr
    task = printed(done)
    stored = from_api(live, task["id"])
    # Like POST /tasks, enqueue answers with the task as Redis holds it (created by
    # Redis's clock, with its effective max retries and timeout); only the due time is
    # left unset.
    assert {k: v for k, v in task.items() if k != "scheduled_at"} == {
        k: v for k, v in stored.items() if k != "scheduled_at"
    }
    assert task["status"] == "scheduled"
    assert TIME.match(task["created_at"])


def test_a_task_that_fails_exits_1_and_is_printed(live: LiveServer, api_settings: Settings) -> None:
    done = enqueue(api_settings, "fail", "--max-retries", "0", "--wait")
    assert done.returncode == exits.NO, done.stderr
    task = printed(done)
    assert task["status"] == "failed"
    assert task == from_api(live, task["id"])


def test_a_wait_that_runs_out_exits_4_with_the_task_as_it_is(
    live: LiveServer, api_settings: Settings
) -> None:
    done = enqueue(api_settings, "sleep", "--payload", '{"seconds": 5}', "--wait-timeout", "0.5")
    assert done.returncode == exits.WAIT_RAN_OUT, done.stderr
    task = printed(done)
    assert task["status"] in ("queued", "active")
    (line,) = done.stderr.strip().splitlines()
    assert line == (
        f"error: task {task['id']} is still {task['status']} after 0.5 s "
        "(wait longer with --wait-timeout SECONDS)"
    )


def test_the_old_wait_option_still_works_and_says_what_to_use(
    live: LiveServer, api_settings: Settings
) -> None:
    done = enqueue(api_settings, "echo", "--payload", "7", "--wait", "--timeout", "29")
    assert done.returncode == exits.OK, done.stderr
    task = printed(done)
    assert task["result"] == 7
    assert "--timeout is deprecated: use --wait-timeout" in done.stderr
    # Not the task's own limit: it runs with its type's.
    assert task["timeout"] == from_api(live, task["id"])["timeout"] != 29


def test_an_invalid_task_name_is_a_usage_error(live: LiveServer, api_settings: Settings) -> None:
    done = enqueue(api_settings, "no spaces")
    assert done.returncode == exits.USAGE
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: invalid task type 'no spaces'")
