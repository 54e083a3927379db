"""Dashboard sessions (no Redis): signed, expiring, never holding the key, ended when the
key is removed; a CSRF token of its own per session."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arqd.ui.session import OPEN_ACTOR, Session, Sessions, key_digest

SECRET = b"s" * 32


def sessions(keys: list[str] | None = None, read_only: list[str] | None = None) -> Sessions:
    return Sessions(SECRET, ["alpha-key", "beta-key"] if keys is None else keys, read_only or [])


def test_a_configured_key_signs_in_and_the_cookie_holds_its_digest_not_the_key() -> None:
    made = sessions()
    session = made.sign_in("alpha-key")
    assert session is not None
    cookie = made.encode(session)
    assert "alpha-key" not in cookie
    assert session.digest == key_digest("alpha-key")
    decoded = made.decode(cookie)
    assert decoded == session
    assert made.signed_in(decoded)
    assert made.actor(decoded) == key_digest("alpha-key")


def test_an_unknown_key_does_not_sign_in() -> None:
    assert sessions().sign_in("gamma-key") is None
    assert sessions().sign_in("") is None


def test_a_new_session_is_not_signed_in_while_keys_are_configured() -> None:
    made = sessions()
    assert not made.signed_in(made.new())


def test_without_keys_every_session_is_signed_in_and_acts_as_open() -> None:
    made = sessions(keys=[])
    session = made.new()
    assert made.open
    assert made.signed_in(session)
    assert made.actor(session) == OPEN_ACTOR
    assert not made.read_only(session)


def test_read_only_keys_are_read_only() -> None:
    made = sessions(read_only=["beta-key"])
    beta, alpha = made.sign_in("beta-key"), made.sign_in("alpha-key")
    assert beta is not None
    assert alpha is not None
    assert made.read_only(beta)
    assert not made.read_only(alpha)


def test_removing_a_key_ends_its_sessions() -> None:
    session = sessions().sign_in("alpha-key")
    assert session is not None
    cookie = sessions().encode(session)
    later = sessions(keys=["beta-key"])  # same secret, alpha removed from API_KEYS
    decoded = later.decode(cookie)
    assert decoded is not None
    assert not later.signed_in(decoded)


def test_an_expired_session_is_refused() -> None:
    made = sessions()
    old = Session("nonce", key_digest("alpha-key"), int(time.time()) - 1)
    assert made.decode(made.encode(old)) is None


def test_another_secret_does_not_accept_the_cookie() -> None:
    session = sessions().sign_in("alpha-key")
    assert session is not None
    other = Sessions(b"t" * 32, ["alpha-key"], [])
    assert other.decode(sessions().encode(session)) is None


@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_any_change_to_a_cookie_is_refused(position: int, replacement: str) -> None:
    made = sessions()
    session = made.sign_in("alpha-key")
    assert session is not None
    cookie = made.encode(session)
    index = position % len(cookie)
    tampered = cookie[:index] + replacement + cookie[index + 1 :]
    if tampered != cookie:
        assert made.decode(tampered) is None


@pytest.mark.parametrize("cookie", [None, "", "x", "a.b.c", "a.b.c.d.e", "...."])
def test_malformed_cookies_are_refused(cookie: str | None) -> None:
    assert sessions().decode(cookie) is None


def test_each_session_has_its_own_csrf_token() -> None:
    made = sessions()
    one, two = made.new(), made.new()
    assert made.csrf(one) != made.csrf(two)
    assert made.csrf_ok(one, made.csrf(one))
    assert not made.csrf_ok(one, made.csrf(two))
    assert not made.csrf_ok(one, None)
    assert not made.csrf_ok(one, "")
