"""Opening the event store and the read pool that the configured database URL names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections import postgres as postgres_reads
from projections import sqlite as sqlite_reads
from service.store import postgres, sqlite

if TYPE_CHECKING:
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
        pg = settings.postgres
        connect = {
            "host": pg.host,
            "port": pg.port,
            "user": pg.user,
            "password": pg.password,
            "dbname": pg.dbname,
            "connect_timeout": 5,
        }
        return postgres_reads.ReadPool(connect, settings.read_connections)
    return sqlite_reads.ReadPool(settings.sqlite_path, settings.read_connections)
