"""The dashboard's queue control: a queue page pauses and resumes its queue (or one task
type of it) with a reason, the overview marks a paused queue, and each action is audited."""

from __future__ import annotations

from arqd.ui.session import key_digest
from e2e.live import API_KEY, LiveServer
from ui.conftest import READ_ONLY_KEY, Redis, csrf_of, signed_in


def test_a_queue_page_pauses_and_resumes_its_queue(ui_server: LiveServer, redis: Redis) -> None:
    redis.run(redis.client.enqueue("echo", {}, queue="held-mail", delay=600))
    with signed_in(ui_server) as http:
        page = http.get("/ui/queues/held-mail")
        assert 'action="/ui/queues/held-mail/pause"' in page.text
        token = csrf_of(page)
        form = {"csrf": token, "reason": "smtp <down>", "type": ""}
        assert http.post("/ui/queues/held-mail/pause", data=form).status_code == 303
        state = redis.run(redis.client.queues.paused("held-mail"))
        assert state.whole is not None
        assert (state.whole.reason, state.whole.by) == ("smtp <down>", key_digest(API_KEY))

        page = http.get("/ui/queues/held-mail")
        assert "smtp &lt;down&gt;" in page.text  # escaped
        assert 'action="/ui/queues/held-mail/resume"' in page.text
        overview = http.get("/ui").text
        row = overview[overview.index('data-queue="held-mail"') :]
        assert "s-paused" in row[: row.index("</tr>")]

        typed = {"csrf": token, "reason": "bounces", "type": "echo"}
        assert http.post("/ui/queues/held-mail/pause", data=typed).status_code == 303
        assert http.post("/ui/queues/held-mail/resume", data={"csrf": token}).status_code == 303
        assert "Resume echo" in http.get("/ui/queues/held-mail").text
        resume_echo = {"csrf": token, "type": "echo"}
        assert http.post("/ui/queues/held-mail/resume", data=resume_echo).status_code == 303
        state = redis.run(redis.client.queues.paused("held-mail"))
        assert (state.whole, state.types) == (None, ())

    entries = redis.run(redis.client.audit_log(20))
    mine = [(e.action, e.target) for e in entries if e.target.startswith("queue:held-mail")]
    assert mine == [
        ("resume", "queue:held-mail:echo"),
        ("resume", "queue:held-mail"),
        ("pause", "queue:held-mail:echo"),
        ("pause", "queue:held-mail"),
    ]


def test_a_bad_type_name_is_said_on_the_page(ui_server: LiveServer, redis: Redis) -> None:
    with signed_in(ui_server) as http:
        token = csrf_of(http.get("/ui/queues/default"))
        form = {"csrf": token, "type": "9lives", "reason": ""}
        answer = http.post("/ui/queues/default/pause", data=form)
        assert answer.status_code == 409
        assert "invalid task type" in answer.text
    assert redis.run(redis.client.queues.paused("default")).whole is None


def test_a_read_only_key_sees_no_pause_form(ui_server: LiveServer) -> None:
    with signed_in(ui_server, READ_ONLY_KEY) as http:
        page = http.get("/ui/queues/default")
        assert page.status_code == 200
        assert "/pause" not in page.text
