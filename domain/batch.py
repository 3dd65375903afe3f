"""A batch parent's rules: how a child's change moves its counters, and how the batch ends."""

from __future__ import annotations

from typing import Any

CHILD_STATES = ("pending", "running", "succeeded", "failed", "cancelled")


def new_counters(size: int) -> dict[str, int]:
    return {"total": size, "pending": size} | dict.fromkeys(CHILD_STATES[1:], 0)


def moved(counters: dict[str, int], old: str, new: str) -> dict[str, int]:
    """The counters after one child moved from status `old` to `new`."""
    counts = dict(counters)
    counts[old] -= 1
    counts[new] += 1
    return counts


def progress(counts: dict[str, int]) -> dict[str, Any]:
    """The parent's `progress`: children done (succeeded), failed (or cancelled), in all."""
    done = counts["succeeded"] + counts["failed"] + counts["cancelled"]
    return {
        "total": counts["total"],
        "completed": counts["succeeded"],
        "failed": counts["failed"] + counts["cancelled"],
        "percent": round(100 * done / counts["total"], 2) if counts["total"] else 100.0,
    }


def outcome(counts: dict[str, int], *, cancel_requested: bool) -> str | None:
    """How the batch ends once no child is pending or running; None while some are."""
    if counts["pending"] + counts["running"] > 0:
        return None
    if cancel_requested:
        return "cancelled"
    return "succeeded" if counts["succeeded"] == counts["total"] else "failed"


def failure(counts: dict[str, int]) -> dict[str, Any]:
    failed = counts["total"] - counts["succeeded"]
    return {
        "message": f"{failed} of {counts['total']} children did not succeed.",
        "code": "children_failed",
        "details": counts,
    }
