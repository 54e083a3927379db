"""Per-minute buckets to minutes, and minutes to the dashboard's bars (no Redis)."""

from __future__ import annotations

from datetime import UTC, datetime

from arqd.store.history import Throughput, buckets
from arqd.ui.charts import bars, day_chart, sparkline


def test_buckets_span_hours_and_fill_missing_minutes_with_zero() -> None:
    hour = 490_000
    counts = {hour: {"58:s": 3, "59:f": 1}, hour + 1: {"0:s": 2, "0:f": 5, "1:s": 9}}
    seen = buckets("q", hour * 60 + 57, hour * 60 + 60, counts)
    assert seen.succeeded == (0, 3, 0, 2)
    assert seen.failed == (0, 0, 1, 5)
    assert seen.start == datetime.fromtimestamp((hour * 60 + 57) * 60, UTC)
    assert (seen.end - seen.start).total_seconds() == 4 * 60
    assert (seen.total_succeeded, seen.total_failed) == (5, 6)


def test_bars_grow_from_the_axis_on_one_scale_and_a_small_count_still_shows() -> None:
    assert bars([0, 2, 4], 2, 14, -13, 4) == "M2 14v-6.5h2V14zM4 14v-13h2V14z"
    assert bars([1, 0], 1, 56, 48, 1000) == "M0 56v2h1V56z"
    assert bars([0, 0], 1, 56, 48, 0) == ""


def throughput(succeeded: list[int], failed: list[int]) -> Throughput:
    return Throughput("mail", datetime(2026, 1, 1, tzinfo=UTC), tuple(succeeded), tuple(failed))


def test_a_sparkline_says_its_totals_and_peak_in_words() -> None:
    chart = sparkline(throughput([0] * 58 + [3, 1], [0] * 59 + [2]))
    assert chart.label == "mail, last hour: 4 succeeded, 2 failed; at most 3 a minute"
    assert (chart.width, chart.succeeded, chart.failed, chart.peak) == (120, 4, 2, 3)
    assert chart.ticks == ()
    quiet = sparkline(throughput([0] * 60, [0] * 60))
    assert quiet.label == "mail, last hour: 0 succeeded, 0 failed"
    assert quiet.succeeded_path == quiet.failed_path == ""


def test_the_day_chart_ticks_every_hour_back_from_now() -> None:
    chart = day_chart(throughput([0] * 1440, [0] * 1440))
    assert chart.width == 1440
    assert [t.x for t in chart.ticks] == [60.0 * h for h in range(25)]
    labels = [t.label for t in chart.ticks if t.label]
    assert labels == [f"{h} h ago" for h in range(24, 0, -3)] + ["now"]
    assert chart.label.startswith("Tasks finished per minute, last 24 hours: 0 succeeded")
