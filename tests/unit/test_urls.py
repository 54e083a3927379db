"""Redis URLs in messages never show a password, however the URL is written."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from arqd.core.urls import redacted

# What people put in URLs: letters, digits and the punctuation passwords are made of
# ("@" too: redis-py splits at the last one).
secret = st.text(
    alphabet=st.characters(codec="ascii", categories=("L", "N", "P", "S")), min_size=4
).filter(lambda s: "***" not in s)
name = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
scheme = st.sampled_from(["redis://", "rediss://", "unix://", ""])
port = st.integers(1, 65535).map(lambda n: f":{n}") | st.just("")
tail = st.sampled_from(["", "/0", "/3", "/0?ssl_cert_reqs=none", "?db=2"])


@given(scheme, st.sampled_from(["", "default", "admin"]), secret, name, port, tail)
def test_a_password_never_shows(
    prefix: str, user: str, password: str, host: str, at: str, rest: str
) -> None:
    shown = redacted(f"{prefix}{user}:{password}@{host}{at}{rest}")
    assert shown == f"{prefix}{user}:***@{host}{at}{rest}"


@given(scheme, secret.filter(lambda s: not {":", "/"} & set(s)), name, port)
def test_a_lone_secret_before_the_host_is_hidden_too(
    prefix: str, password: str, host: str, at: str
) -> None:
    shown = redacted(f"{prefix}{password}@{host}{at}/0")
    assert shown == f"{prefix}***@{host}{at}/0"


@given(
    scheme,
    secret.filter(lambda s: not {"&", "#", "@"} & set(s)),
    name,
    st.sampled_from(["password", "Password"]),
)
def test_a_password_parameter_is_hidden(prefix: str, password: str, host: str, key: str) -> None:
    shown = redacted(f"{prefix}{host}/0?db=1&{key}={password}#x")
    assert shown == f"{prefix}{host}/0?db=1&{key}=***#x"


@given(scheme, name, port, tail)
def test_a_url_without_credentials_is_kept_as_written(
    prefix: str, host: str, at: str, rest: str
) -> None:
    url = f"{prefix}{host}{at}{rest}"
    assert redacted(url) == url
