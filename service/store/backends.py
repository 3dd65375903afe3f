"""Opening the event store and the read pool that the configured database URL names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections import postgres as postgres_reads
from projections import sqlite as sqlite_reads
from service.store import postgres, sqlite
from service.store.postgres_listen import CommitListener

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from projections.reads import ReadPool
    from service.settings import Settings
    from service.store.base import EventStore


def open_store(settings: Settings, *, migrate: bool = True) -> EventStore:
    """The event store of `settings.database_url` (SQLite, or PostgreSQL), its schema
    migrated to this version's unless `migrate` is false (a reader that must not write:
    `EventStore.pending_migrations` then says what it lacks; PostgreSQL always migrates)."""
    if settings.is_postgres:
        return postgres.PostgresEventStore.open(settings)
    return sqlite.SQLiteEventStore.open(settings, migrate=migrate)


def read_pool(settings: Settings) -> ReadPool:
    """The async connections to the read models that the routes read through (not open)."""
    if settings.is_postgres:
        return postgres_reads.ReadPool(_connect(settings), settings.read_connections)
    return sqlite_reads.ReadPool(settings.sqlite_path, settings.read_connections)


def commit_listener(
    settings: Settings, store: EventStore, on_commit: Callable[[], None]
) -> CommitListener | None:
    """What tells this process that another one has committed events (not started), where
    the database can: PostgreSQL's LISTEN/NOTIFY. None on SQLite, which has no such thing
    (its several processes poll: `serve --workers N`)."""
    if not isinstance(store, postgres.PostgresEventStore):
        return None
    return CommitListener(_connect(settings), store.notify_channel, on_commit)


def _connect(settings: Settings) -> dict[str, Any]:
    pg = settings.postgres
    return {
        "host": pg.host,
        "port": pg.port,
        "user": pg.user,
        "password": pg.password,
        "dbname": pg.dbname,
        "connect_timeout": 5,
    }
