"""The geometry of the dashboard's throughput charts, drawn as inline SVG by the macro
``throughput_chart`` (templates/macros.html): a bar per minute, the tasks that succeeded
above the axis and those that failed below it, on one scale. Position tells the two
apart as well as colour does; each chart's label says its totals in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from arqd.client import Client, Throughput
from arqd.ui.web import Ui, Viewer

TICK_LABELS_EVERY = 3  # hours between labelled ticks on the day's chart
LEAST = 2.0  # units of the shortest bar drawn


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """What the macro draws: a ``width`` x ``height`` view box, the axis at ``axis``, one
    path of bars each way, ticks (with the ``plot`` height they span) and the totals;
    ``start``: when the first minute began."""

    kind: str
    start: datetime
    width: int
    height: int
    axis: float
    plot: float
    succeeded_path: str
    failed_path: str
    ticks: tuple[Tick, ...]
    succeeded: int
    failed: int
    peak: int
    label: str


def sparkline(seen: Throughput) -> Chart:
    """The overview's chart of a queue's last minutes: 2 units a minute, no ticks."""
    span = _span(len(seen.succeeded))
    label = f"{seen.queue}, last {span}: {_totals(seen)}"
    return _chart("spark", seen, bar=2, half=13, margin=1, ticks=(), label=label)


def day_chart(seen: Throughput) -> Chart:
    """The queue page's chart of the last day: a unit a minute, a tick every hour back
    from now, labelled every few hours."""
    minutes = len(seen.succeeded)
    ticks = tuple(
        Tick(float(minutes - 60 * hours), _ago(hours) if hours % TICK_LABELS_EVERY == 0 else "")
        for hours in range(minutes // 60, -1, -1)  # left to right
    )
    label = f"Tasks finished per minute, last {_span(minutes)}: {_totals(seen)}"
    return _chart("day", seen, bar=1, half=48, margin=8, ticks=ticks, label=label)


def _chart(
    kind: str,
    seen: Throughput,
    bar: int,
    half: int,
    margin: int,
    ticks: tuple[Tick, ...],
    label: str,
) -> Chart:
    peak = max(max(seen.succeeded, default=0), max(seen.failed, default=0))
    axis = margin + half
    plot = 2 * (margin + half)
    return Chart(
        kind=kind,
        start=seen.start,
        width=bar * len(seen.succeeded),
        height=plot + (20 if ticks else 0),
        axis=axis,
        plot=plot,
        succeeded_path=bars(seen.succeeded, bar, axis, -half, peak),
        failed_path=bars(seen.failed, bar, axis, half, peak),
        ticks=tuple(Tick(t.x * bar, t.label) for t in ticks),
        succeeded=seen.total_succeeded,
        failed=seen.total_failed,
        peak=peak,
        label=f"{label}; at most {peak:,} a minute" if peak else label,
    )


def bars(counts: Sequence[int], width: int, axis: float, reach: float, peak: int) -> str:
    """An SVG path of a bar ``width`` wide per non-zero count, from ``axis`` towards
    ``axis + reach`` (negative: up), the ``peak`` count reaching it all; a count too
    small to see still shows ``LEAST`` units, clear of the axis line."""
    out = []
    for i, count in enumerate(counts):
        if count:
            length = max(abs(reach) * count / peak, LEAST)
            out.append(
                f"M{i * width} {axis:g}v{length if reach > 0 else -length:.4g}h{width}V{axis:g}z"
            )
    return "".join(out)


def _totals(seen: Throughput) -> str:
    return f"{seen.total_succeeded:,} succeeded, {seen.total_failed:,} failed"


def _span(minutes: int) -> str:
    if minutes % 60 == 0 and minutes >= 120:
        return f"{minutes // 60} hours"
    return f"{minutes} minutes" if minutes != 60 else "hour"


def _ago(hours: int) -> str:
    return "now" if hours == 0 else f"{hours} h ago"


SPARK_MINUTES = 60  # the overview's charts: one or two hours' buckets a queue
CHART_KINDS = ("spark", "day")  # the overview's (a queue's last hour), a queue page's (24 h)


class Charts:
    """A live page's throughput charts, drawn again as the page first drew them:
    ``spark`` (the overview's cells) or ``day`` (a queue page's figure)."""

    def __init__(self, ui: Ui, viewer: Viewer, kind: str) -> None:
        self.ui = ui
        self.viewer = viewer
        self.kind = kind

    async def draw(self, client: Client, queue: str) -> str:
        if self.kind == "spark":
            seen = await client.throughput(queue, SPARK_MINUTES)
            return self.ui.fragment("spark_cell.html", self.viewer, {"c": sparkline(seen)})
        seen = await client.throughput(queue)
        return self.ui.fragment("day_figure.html", self.viewer, {"chart": day_chart(seen)})
