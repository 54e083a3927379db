"""The relay's reading of outbox entries and notices as common.lua writes them: a member's
wf field holds the separator itself, so it comes last."""

from __future__ import annotations

from arqd.store.relay import decode_entry, decode_notice

US = b"\x1f"


def test_a_create_entry_keeps_its_wf_whole() -> None:
    record = US.join([b"resize", b"", b"", b"3", b"", b"", b""])
    wf = US.join([b"wid:4", b"home", b"0"])
    entry = decode_entry(b"wid.1.2", US.join([b"m", b"gpu", b"1", record, wf]))
    assert (entry.kind, entry.queue, entry.member, entry.step) == (b"m", "gpu", b"wid.1.2", b"1")
    assert (entry.detail, entry.wf) == (record, wf)
    assert entry.takes_input


def test_an_error_callback_has_no_wf_and_a_cancel_names_its_type() -> None:
    record = US.join([b"alert", b"", b"", b"", b"", b"", b""])
    entry = decode_entry(b"wid.err.1.0", US.join([b"m", b"ops", b"err.1", record, b""]))
    assert (entry.wf, entry.step, entry.detail) == (b"", b"err.1", record)
    wf = US.join([b"wid:0", b"home", b"0"])
    cancel = decode_entry(b"c:wid.0.0", US.join([b"c", b"gpu", b"resize", wf]))
    assert (cancel.kind, cancel.member, cancel.detail, cancel.wf) == (
        b"c",
        b"wid.0.0",
        b"resize",
        wf,
    )
    assert not cancel.takes_input


def test_a_notice_keeps_its_data_whole() -> None:
    raw = US.join([b"home", b"wid", b"7", b"2", b"s", b'{"a":"\\u001f"}'])
    notice = decode_notice(b"wid.1.3", raw)
    assert (notice.home, notice.workflow) == ("home", "wid")
    assert notice.fields == (b"7", b"2", b"s", b'{"a":"\\u001f"}')
