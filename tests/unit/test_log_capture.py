"""The worker's log capture keeps what logging did before it: in a process that never
configured logging, a warning logged outside any task still reaches stderr."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import logging
from arqd.worker.reporting import LogCapture
LogCapture.start()
logging.getLogger("app").warning("outside any task")
logging.getLogger("app").info("below lastResort's level")
LogCapture.stop()
logging.getLogger("app").warning("after the worker")
"""

CONFIGURED = """
import logging, sys
logging.basicConfig(stream=sys.stdout, format="%(message)s")
from arqd.worker.reporting import LogCapture
LogCapture.start()
logging.getLogger("app").warning("once")
"""


def test_an_unconfigured_process_still_prints_warnings() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stderr.splitlines() == ["outside any task", "after the worker"]


def test_a_configured_process_prints_each_record_once() -> None:
    run = subprocess.run(
        [sys.executable, "-c", CONFIGURED], capture_output=True, text=True, check=True
    )
    assert (run.stdout, run.stderr) == ("once\n", "")
