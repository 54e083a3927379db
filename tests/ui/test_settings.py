"""The dashboard's settings: read-only keys (each one of API_KEYS) and the session secret."""

from __future__ import annotations

import pytest

from arqd.core.errors import ConfigurationError
from arqd.core.settings import Settings


def test_read_only_keys_are_a_list_of_api_keys() -> None:
    s = Settings.from_env({"API_KEYS": "a,b,c", "ARQD_READ_ONLY_KEYS": " b , c,"})
    assert s.read_only_key_list() == ["b", "c"]
    assert Settings.from_env({}).read_only_key_list() == []


def test_a_read_only_key_that_is_not_an_api_key_is_an_error_that_does_not_echo_it() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"API_KEYS": "a", "ARQD_READ_ONLY_KEYS": "secret-typo"})
    message = str(raised.value)
    assert "ARQD_READ_ONLY_KEYS" in message
    assert "not one of API_KEYS" in message
    assert "secret-typo" not in message


def test_the_session_secret_must_be_long_and_is_never_echoed() -> None:
    assert Settings.from_env({"ARQD_UI_SECRET": "x" * 32}).ui_secret == "x" * 32
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"ARQD_UI_SECRET": "short-secret"})
    assert "ARQD_UI_SECRET" in str(raised.value)
    assert "short-secret" not in str(raised.value)
