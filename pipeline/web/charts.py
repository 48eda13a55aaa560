"""Returns per day as bars, computed here and drawn by the template as inline SVG (no script, no library)."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 22, 34


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: dt.date
    count: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    grid: list[tuple[float, int]]        # (y, value) of horizontal grid lines
    labels: list[tuple[float, str]]      # (x, text) under the axis
    total: int
    first: dt.date
    last: dt.date
    baseline: float
    left: int
    right: float


def _step(top: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        if top / step <= 5:
            return step
    return 10000


def returns_per_day(days: Counter, end: dt.date, span: int = 30) -> Chart:
    first = end - dt.timedelta(days=span - 1)
    counts = [days.get(first + dt.timedelta(days=i), 0) for i in range(span)]
    step = _step(max(counts + [1]))
    top = max(step, -(-max(counts + [1]) // step) * step)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / span
    bars = []
    for i, count in enumerate(counts):
        h = plot_h * count / top
        bars.append(Bar(round(LEFT + i * slot + slot * 0.15, 1), round(TOP + plot_h - h, 1), round(slot * 0.7, 1),
                        round(h, 1), first + dt.timedelta(days=i), count))
    grid = [(round(TOP + plot_h - plot_h * v / top, 1), v) for v in range(0, top + 1, step)]
    labels = [(round(LEFT + i * slot + slot / 2, 1), (first + dt.timedelta(days=i)).strftime("%m/%d"))
              for i in range(0, span, 7 if span > 14 else 1)]
    return Chart(WIDTH, HEIGHT, bars, grid, labels, sum(counts), first, end, TOP + plot_h, LEFT, WIDTH - RIGHT)
