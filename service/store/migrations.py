"""Versioned migrations of a store's own schema, applied once, in order, when a store opens.

A backend lists its steps (`Migration`s, numbered from 1, never renumbered or edited once
released: a change is a new step) and gives the runner a write transaction that holds the
database's write lock, and a ledger of the steps applied. Each step runs in its own
transaction with its ledger row, after checking the ledger under the lock: processes that
start at once take turns, and the first does the work while the others find it done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractContextManager

    from projections.sql import Cursor


@dataclass(frozen=True, slots=True)
class Migration:
    """One step: `apply` runs in the transaction that records it as applied."""

    version: int
    name: str
    apply: Callable[[Cursor], None]


class Ledger(Protocol):
    """Where a backend records the steps applied (its `schema_migrations` table)."""

    def applied(self, cursor: Cursor) -> set[int]: ...

    def record(self, cursor: Cursor, migration: Migration) -> None: ...


def check_order(steps: Sequence[Migration]) -> None:
    """Steps are numbered 1, 2, 3...: a gap or a duplicate is a programming error."""
    versions = [step.version for step in steps]
    if versions != list(range(1, len(steps) + 1)):
        raise ValueError(f"migrations must be numbered 1..{len(steps)}: {versions}")


def migrate(
    transaction: Callable[[], AbstractContextManager[Cursor]],
    ledger: Ledger,
    steps: Sequence[Migration],
) -> list[Migration]:
    """Applies the steps not applied yet, in order; returns those this call applied."""
    check_order(steps)
    with transaction() as cursor:
        done = ledger.applied(cursor)
    applied = []
    for step in steps:
        if step.version in done:
            continue
        with transaction() as cursor:
            if step.version in ledger.applied(cursor):  # another process was first
                continue
            step.apply(cursor)
            ledger.record(cursor, step)
        applied.append(step)
    return applied
