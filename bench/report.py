"""Percentiles, plain-text tables and the closing summary block."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; NaN for an empty sequence."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> str:
    """Seconds as milliseconds, 2 decimals (3 below 1 ms)."""
    if math.isnan(seconds):
        return "-"
    value = seconds * 1000
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def ratio(a: float, b: float) -> str:
    if b == 0 or math.isnan(a) or math.isnan(b):
        return "-"
    return f"{a / b:.2f}"


def rate(value: float) -> str:
    return f"{value:,.0f}"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A fixed-width table: first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(cells[0]), rule, *(line(row) for row in cells[1:])]
    return "\n".join([f"\n== {title}", *body])


class Summary:
    """key: value lines collected from every part, printed last."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def add(self, key: str, value: Any) -> None:
        self.items.append((key, str(value)))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def render(self) -> str:
        width = max((len(k) for k, _ in self.items), default=0)
        lines = ["\n== summary (one run; ratios are within this run)"]
        lines += [f"{key.ljust(width)}: {value}" for key, value in self.items]
        lines += [f"note: {text}" for text in self.notes]
        return "\n".join(lines)


def say(text: str) -> None:
    print(text, flush=True)
