"""Each script carries the helpers of common.lua it uses, and no others."""

import re
from importlib.resources import files

from arqd.store import scripts
from arqd.store.events import EVENT_STATUS, StreamEvent


def _defined(source: str) -> set[str]:
    return set(re.findall(r"^local function (\w+)", source, re.MULTILINE))


def test_a_script_gets_the_helpers_it_calls_and_theirs() -> None:
    finish = scripts.source("finish")
    # finish calls type_breaker_record, which calls breaker_record and emit.
    assert {"type_breaker_record", "breaker_record", "emit"} <= _defined(finish)


def test_a_script_gets_no_helper_it_never_names() -> None:
    assert _defined(scripts.source("stats")).isdisjoint({"gcra_take", "breaker_record"})
    assert "gcra_take" not in _defined(scripts.source("enqueue"))
    assert "breaker_allow" not in _defined(scripts.source("finish"))


def test_every_helper_a_script_names_is_defined_before_the_script() -> None:
    helper_names = set().union(*(h.names for h in scripts.helpers()))
    for name in scripts.NAMES:
        source = scripts.source(name)
        body = (files("arqd.store") / "lua" / f"{name}.lua").read_text()
        assert source.endswith(body)
        prelude = source.removesuffix(body)
        words = set(re.findall(r"[A-Za-z_]\w*", body))
        for helper in helper_names & words:
            assert re.search(rf"^local (function )?[\w, ]*\b{helper}\b", prelude, re.MULTILINE), (
                f"{name}.lua uses {helper} but its source does not define it first"
            )


def test_helpers_keep_common_lua_s_order_and_comments() -> None:
    enqueue = scripts.source("enqueue")
    assert enqueue.index("local function now_ms") < enqueue.index("local function emit")
    assert "-- push_ready (to the back) of many ids" in enqueue


def test_every_event_a_script_emits_implies_a_status() -> None:
    # Stream entries carry no status of their own: the event's name must imply one.
    emitted = set()
    for name in (*scripts.NAMES, "common"):
        lua = (files("arqd.store") / "lua" / f"{name}.lua").read_text()
        emitted |= set(re.findall(r"emit\(prefix, maxlen, [^,]+, '(\w+)'", lua))
        emitted |= set(re.findall(r"'(breaker_[a-z_]+)'", lua))  # the breaker machine's
        emitted |= set(re.findall(r"'event', '(\w+)'", lua))  # written by XADD itself
    assert {"queued", "active", "succeeded", "breaker_opened", "breaker_reset"} <= emitted
    assert {"progress", "log"} <= emitted
    assert emitted <= set(EVENT_STATUS)


def test_an_entry_written_with_a_status_keeps_it() -> None:
    old = StreamEvent("q", "1-0", {b"event": b"returned", b"status": b"queued"})
    assert old.status == "queued"
    assert StreamEvent("q", "1-0", {b"event": b"retrying"}).status == "scheduled"
    assert StreamEvent("q", "1-0", {b"event": b"breaker_half_open"}).status == "half_open"
