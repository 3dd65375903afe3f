"""Opening the event store that the configured database URL names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.store import sqlite

if TYPE_CHECKING:
    from service.settings import Settings
    from service.store.base import EventStore


def open_store(settings: Settings, *, migrate: bool = True) -> EventStore:
    """The event store of `settings.database_url` (SQLite; PostgreSQL is the next backend),
    its schema migrated to this version's unless `migrate` is false (a reader that must
    not write: `EventStore.pending_migrations` then says what it lacks)."""
    return sqlite.SQLiteEventStore.open(settings, migrate=migrate)
