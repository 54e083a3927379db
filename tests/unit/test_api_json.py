"""The API's JSON writer: times keep one shape, so clients may compare them as strings."""

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from arqd.api.schemas import dumps


def test_times_always_carry_milliseconds_and_sort_as_strings() -> None:
    whole = datetime(2026, 11, 29, 14, 52, 35, tzinfo=UTC)
    later = whole + timedelta(milliseconds=1)

    written = orjson.loads(dumps({"created_at": whole, "started_at": later}))

    assert written == {
        "created_at": "2026-11-29T14:52:35.000Z",
        "started_at": "2026-11-29T14:52:35.001Z",
    }
    assert written["created_at"] < written["started_at"]


def test_times_in_another_zone_are_written_in_utc() -> None:
    berlin = datetime(2026, 11, 29, 15, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=1)))

    assert dumps(berlin) == b'"2026-11-29T14:00:00.250Z"'


def test_a_value_json_cannot_hold_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="object"):
        dumps({"x": object()})
