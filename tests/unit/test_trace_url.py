"""ARQD_TRACE_URL: the tracing UI's page of a trace, an http(s) URL holding ``{trace_id}``."""

from __future__ import annotations

import pytest

from arqd.core.errors import ConfigurationError
from arqd.core.settings import Settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_unset_by_default_so_there_is_no_link() -> None:
    settings = Settings.from_env({})
    assert settings.trace_url is None
    assert settings.trace_link(TRACE_ID) is None


@pytest.mark.parametrize(
    "template",
    [
        "http://localhost:16686/trace/{trace_id}",
        "https://tempo.example.com/explore?traceId={trace_id}&orgId=1",
    ],
)
def test_the_trace_id_takes_the_place_of_its_placeholder(template: str) -> None:
    settings = Settings.from_env({"ARQD_TRACE_URL": template})
    assert settings.trace_url == template
    assert settings.trace_link(TRACE_ID) == template.replace("{trace_id}", TRACE_ID)


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("http://localhost:16686/trace/", "must hold {trace_id}"),
        ("http://localhost:16686/trace/{traceid}", "must hold {trace_id}"),
        ("localhost:16686/trace/{trace_id}", "http:// or https://"),
        ("/trace/{trace_id}", "http:// or https://"),
        ("ftp://localhost/trace/{trace_id}", "http:// or https://"),
        ("javascript:alert('{trace_id}')", "http:// or https://"),
        ("http:///trace/{trace_id}", "http:// or https://"),
    ],
)
def test_anything_else_stops_start_up_with_a_message_naming_the_variable(
    template: str, says: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"ARQD_TRACE_URL": template})
    message = str(raised.value)
    assert "ARQD_TRACE_URL" in message
    assert repr(template) in message
    assert says in message
    assert "http://localhost:16686/trace/{trace_id}" in message  # an example to follow
