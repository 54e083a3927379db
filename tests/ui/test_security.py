"""The dashboard's security over plain HTTP: sign-in once with a key and a signed session
cookie, CSRF tokens on every action route, read-only keys, the audit trail, and the open
mode's banner."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest
from starlette.routing import Route
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from arqd.client import NewTask
from arqd.core.settings import Settings
from arqd.ui import ACTION_ROUTES, ROUTES
from arqd.ui.session import key_digest
from conftest import RedisServer
from e2e.live import API_KEY, ApiProcess, LiveServer, settings_for
from ui.conftest import READ_ONLY_KEY, Redis, csrf_of, serve, signed_in

TASK_ROW = re.compile(r'<tr data-task="([^"]+)"')
NEXT_PAGE = re.compile(r'<a href="(\?[^"]+)" rel="next">')
POSTS = [r for r in ROUTES if isinstance(r, Route) and r.methods and "POST" in r.methods]


def concrete(route: Route) -> str:
    path = route.path.replace("{task_id}", "some-task").replace("{name}", "some-breaker")
    return path.replace("{queue}", "default")


def test_every_post_route_is_listed_and_the_action_routes_are_all_of_them_but_sign_in() -> None:
    paths = {r.path for r in POSTS}
    assert paths == {r.path for r in ACTION_ROUTES if isinstance(r, Route)} | {
        "/ui/login",
        "/ui/logout",
    }
    assert len(ACTION_ROUTES) >= 4


def test_pages_ask_for_a_key_once_and_keep_a_session_cookie(ui_server: LiveServer) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        first = http.get("/ui/queues/default")
        assert first.status_code == 303
        assert first.headers["location"].startswith("/ui/login?next=")
    with signed_in(ui_server) as http:
        raw = http.get("/ui/login").headers.get("set-cookie")
        assert raw is None  # signed in: no new cookie, the login form sends you on
        page = http.get("/ui")
        assert page.status_code == 200
        assert "Overview" in page.text
        assert "API_KEYS is not set" not in page.text


def test_the_session_cookie_is_http_only_strict_signed_and_holds_no_key(
    ui_server: LiveServer,
) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        token = csrf_of(http.get("/ui/login"))
        answer = http.post("/ui/login", data={"csrf": token, "key": API_KEY})
        header = answer.headers["set-cookie"]
    cookie = SimpleCookie(header)["arqd_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/ui"
    assert not cookie["secure"]  # plain HTTP here; see the next test
    assert API_KEY not in cookie.value
    assert key_digest(API_KEY) in cookie.value


def test_the_cookie_is_secure_behind_https(ui_server: LiveServer) -> None:
    with httpx.Client(base_url=ui_server.url, headers={"X-Forwarded-Proto": "https"}) as http:
        header = http.get("/ui/login").headers["set-cookie"]
    assert SimpleCookie(header)["arqd_session"]["secure"] is True


@pytest.mark.parametrize(
    ("asked", "sent_to"),
    [
        ("/ui/queues/default?status=failed", "/ui/queues/default?status=failed"),
        ("https://elsewhere.example/ui", "/ui"),
        ("//elsewhere.example/ui", "/ui"),
        ("/uielsewhere", "/ui"),
        ("/docs", "/ui"),
    ],
)
def test_signing_in_returns_to_a_dashboard_page_and_nowhere_else(
    ui_server: LiveServer, asked: str, sent_to: str
) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        token = csrf_of(http.get("/ui/login"))
        answer = http.post("/ui/login", data={"csrf": token, "key": API_KEY, "next": asked})
        assert answer.headers["location"] == sent_to


def test_signing_out_ends_the_session(ui_server: LiveServer) -> None:
    with signed_in(ui_server) as http:
        token = csrf_of(http.get("/ui"))
        assert http.post("/ui/logout", data={"csrf": token}).status_code == 303
        assert http.get("/ui").status_code == 303  # to the sign-in form again


def test_a_queue_pages_with_a_cursor_without_loading_everything(
    ui_server: LiveServer, redis: Redis
) -> None:
    made = redis.run(
        redis.client.enqueue_many([NewTask("echo", n, queue="paged", delay=600) for n in range(60)])
    )
    with signed_in(ui_server) as http:
        first = http.get("/ui/queues/paged?status=scheduled")
        shown = set(TASK_ROW.findall(first.text))
        assert len(shown) == 50
        following = NEXT_PAGE.search(first.text)
        assert following is not None
        second = http.get("/ui/queues/paged" + following.group(1).replace("&amp;", "&"))
        rest = set(TASK_ROW.findall(second.text))
        assert len(rest) == 10
        assert shown | rest == {task.id for task in made}
        assert NEXT_PAGE.search(second.text) is None


def test_a_wrong_key_does_not_sign_in(ui_server: LiveServer) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        token = csrf_of(http.get("/ui/login"))
        answer = http.post("/ui/login", data={"csrf": token, "key": "wrong"})
        assert answer.status_code == 401
        assert "not one of the configured API keys" in answer.text
        assert http.get("/ui").status_code == 303


def test_every_post_refuses_a_missing_or_wrong_csrf_token(ui_server: LiveServer) -> None:
    with signed_in(ui_server) as http:
        for route in POSTS:
            for form in ({}, {"csrf": ""}, {"csrf": "forged"}):
                answer = http.post(concrete(route), data=form)
                assert answer.status_code == 403, (route.path, form)
                assert "CSRF" in answer.text


def test_every_post_refuses_another_origin_even_with_the_token(ui_server: LiveServer) -> None:
    """A form posted from another local origin (another port of this host): the session
    cookie goes along (SameSite looks at the site, not the port), the token does not."""
    with signed_in(ui_server) as http:
        token = csrf_of(http.get("/ui/breakers"))
        for route in POSTS:
            for origin in ("http://127.0.0.1:1", "http://localhost:8080", "null"):
                answer = http.post(
                    concrete(route), data={"csrf": token}, headers={"Origin": origin}
                )
                assert answer.status_code == 403, (route.path, origin)


def test_a_read_only_key_sees_no_action_and_every_action_is_refused(
    ui_server: LiveServer, redis: Redis
) -> None:
    failed = redis.run(redis.client.enqueue("fail", {}, max_retries=0))
    redis.run(redis.client.wait(failed.id, timeout=10))
    with signed_in(ui_server, READ_ONLY_KEY) as http:
        page = http.get(f"/ui/tasks/{failed.id}")
        assert page.status_code == 200
        assert "Read-only" in page.text
        assert "/retry" not in page.text
        assert "/copy" not in page.text
        token = csrf_of(page)  # the sign-out form's
        for route in ACTION_ROUTES:
            assert isinstance(route, Route)
            path = concrete(route).replace("some-task", failed.id)
            answer = http.post(path, data={"csrf": token, "payload": "{}", "priority": "0"})
            assert answer.status_code == 403, route.path
            assert "read-only" in answer.text
    still = redis.run(redis.client.get(failed.id))
    assert still is not None
    assert still.status == "failed"


def test_an_action_is_audited_with_the_key_digest(ui_server: LiveServer, redis: Redis) -> None:
    task = redis.run(redis.client.enqueue("echo", {"n": 1}, delay=600))
    with signed_in(ui_server) as http:
        token = csrf_of(http.get(f"/ui/tasks/{task.id}"))
        answer = http.post(f"/ui/tasks/{task.id}/cancel", data={"csrf": token})
        assert answer.status_code == 303
        cancelled = redis.run(redis.client.get(task.id))
        assert cancelled is not None
        assert cancelled.status == "cancelled"
        entries = redis.run(redis.client.audit_log(10))
        mine = [e for e in entries if e.target == f"task:{task.queue}:{task.id}"]
        assert [(e.actor, e.action, e.count) for e in mine] == [(key_digest(API_KEY), "cancel", 1)]
        listed = http.get("/ui/audit").text
        assert task.id in listed
        assert key_digest(API_KEY) in listed
        assert API_KEY not in listed


def test_the_live_socket_needs_a_session_and_this_origin(ui_server: LiveServer) -> None:
    socket_url = f"{ui_server.ws_url}/ui/events"
    with pytest.raises(InvalidStatus) as refused:
        connect(socket_url).close()
    assert refused.value.response.status_code == 403
    with signed_in(ui_server) as http:
        cookie = f"arqd_session={http.cookies['arqd_session']}"
    with connect(socket_url, additional_headers={"Cookie": cookie}) as socket:
        assert '"kind":"stats"' in str(socket.recv(10))
    foreign = {"Cookie": cookie, "Origin": "http://127.0.0.1:1"}
    with pytest.raises(InvalidStatus):
        connect(socket_url, additional_headers=foreign).close()


def test_a_browser_asking_for_the_root_goes_to_the_dashboard(ui_server: LiveServer) -> None:
    with httpx.Client(base_url=ui_server.url) as http:
        answer = http.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
        assert answer.status_code == 307
        assert answer.headers["location"] == "/ui"
        assert http.get("/").status_code == 401  # an API client still meets the API


@pytest.fixture(scope="module")
def open_server(redis_server: RedisServer) -> Iterator[LiveServer]:
    server = serve(settings_for(redis_server.url, api_keys=None))
    yield server
    server.stop()


def test_without_keys_the_dashboard_is_open_and_says_so(open_server: LiveServer) -> None:
    with httpx.Client(base_url=open_server.url) as http:
        page = http.get("/ui")
        assert page.status_code == 200
        assert "API_KEYS is not set" in page.text
        assert "Sign out" not in page.text
        for route in POSTS:  # open, yet every action still needs the token
            assert http.post(concrete(route), data={}).status_code == 403


def test_open_actions_are_audited_as_open(
    open_server: LiveServer, redis_server: RedisServer
) -> None:
    settings = Settings(**{**_settings_of(open_server).model_dump()})
    checker = Redis(settings)
    try:
        task = checker.run(checker.client.enqueue("echo", None, delay=600))
        with httpx.Client(base_url=open_server.url) as http:
            token = csrf_of(http.get(f"/ui/tasks/{task.id}"))
            assert http.post(f"/ui/tasks/{task.id}/cancel", data={"csrf": token}).status_code == 303
        (entry,) = checker.run(checker.client.audit_log(1))
        assert (entry.actor, entry.action) == ("open", "cancel")
    finally:
        checker.close()


def _settings_of(server: LiveServer) -> Settings:
    settings: Settings = server.app.state.arqd.settings
    return settings


async def test_arqd_serve_serves_the_dashboard_and_its_assets(redis_server: RedisServer) -> None:
    """The real command, in a process of its own: pages, style sheet and script come from
    the installed package."""
    api = ApiProcess(settings_for(redis_server.url, read_only_keys=READ_ONLY_KEY))
    try:
        await api.started()
        async with httpx.AsyncClient(base_url=api.url) as http:
            browser = {"Accept": "text/html"}
            assert (await http.get("/", headers=browser)).headers["location"] == "/ui"
            login = await http.get("/ui/login")
            assert login.status_code == 200
            assert "Sign in" in login.text
            for asset, kind in (("ui.css", "text/css"), ("ui.js", "javascript")):
                answer = await http.get(f"/ui/static/{asset}")
                assert answer.status_code == 200
                assert kind in answer.headers["content-type"]
    finally:
        api.stop()


def test_task_data_is_escaped_and_pages_forbid_scripts_from_elsewhere(
    ui_server: LiveServer, redis: Redis
) -> None:
    hostile = '<script>alert("x")</script>'
    task = redis.run(redis.client.enqueue("echo", {"note": hostile}, delay=600))
    with signed_in(ui_server) as http:
        page = http.get(f"/ui/tasks/{task.id}")
        found = http.get(f"/ui/queues/default?status=scheduled&q={hostile}")
    for answer in (page, found):
        assert hostile not in answer.text
        assert "&lt;script&gt;" in answer.text
        policy = answer.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
