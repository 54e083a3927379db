"""Structured log lines carry the task's fields and the current trace."""

import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from arqd.observability.logs import JsonFormatter, TextFormatter


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("arqd.worker", logging.INFO, __file__, 1, "task %s done", ("t1",), None)
    rec.__dict__.update(extra)
    return rec


def test_json_lines_have_the_task_fields() -> None:
    line = JsonFormatter().format(record(task_id="t1", task_type="echo", attempt=2))
    entry = json.loads(line)
    assert entry["message"] == "task t1 done"
    assert (entry["level"], entry["logger"]) == ("info", "arqd.worker")
    assert (entry["task_id"], entry["task_type"], entry["attempt"]) == ("t1", "echo", 2)
    assert "trace_id" not in entry


def test_json_lines_carry_the_current_trace_id() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        entry = json.loads(JsonFormatter().format(record()))
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")


def test_text_lines_append_the_task_fields() -> None:
    line = TextFormatter().format(record(task_id="t1", outcome="succeeded"))
    assert line.endswith("task t1 done task_id=t1 outcome=succeeded")


def test_text_lines_keep_the_standard_time_across_seconds() -> None:
    ours, standard = TextFormatter(), logging.Formatter("%(asctime)s")
    for created in (1_764_000_000.001, 1_764_000_000.999, 1_764_000_001.5, 1_763_999_999.25):
        rec = record()
        rec.created, rec.msecs = created, (created - int(created)) * 1000
        assert ours.format(rec).split(" INFO ")[0] == standard.format(rec)
