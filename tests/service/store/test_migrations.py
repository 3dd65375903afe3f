"""A store written before the hash chains and before `started` carried `lease_seconds`
(tests/fixtures/store-v1.sqlite, made by the code of that time) opens in today's jobtrail:
its chains computed once by a migration, its old events upcast into today's model."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from domain.job import Job
from service.store import backends, export, migrations, verification
from tests.support import make_settings

FIXTURE = Path(__file__).parents[2] / "fixtures" / "store-v1.sqlite"
EVENTS = 71


@pytest.fixture
def old_store(tmp_path):
    settings = make_settings(tmp_path)
    shutil.copyfile(FIXTURE, settings.sqlite_path)
    return settings


def rows(settings, query):
    with sqlite3.connect(settings.sqlite_path) as db:
        return db.execute(query).fetchall()


def test_an_old_store_gets_its_chains_once_when_it_opens(old_store):
    assert rows(old_store, "SELECT name FROM sqlite_master WHERE name = 'event_hashes'") == []
    reader = backends.open_store(old_store, migrate=False)  # what the audit commands do
    try:
        assert reader.pending_migrations() == ["1 (hash chains of the stored events)"]
        [finding] = [m for m in verification.verify(reader) if m.table == "store"]
        assert "not migrated" in finding.problem
    finally:
        reader.close()
    store = backends.open_store(old_store)
    try:
        assert store.pending_migrations() == []
        assert verification.verify(store) == []  # chains hold; read models equal the fold
    finally:
        store.close()
    assert rows(old_store, "SELECT version FROM schema_migrations") == [(1,)]
    assert rows(old_store, "SELECT count(*), max(id) FROM event_hashes") == [(EVENTS, EVENTS)]


def test_processes_opening_an_old_store_at_once_migrate_it_once(old_store):
    code = (
        "import sys; from pathlib import Path; from tests.support import make_settings; "
        "from service.store import backends; "
        "backends.open_store(make_settings(Path(sys.argv[1]))).close()"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", code, str(old_store.data_dir)]) for _ in range(3)
    ]
    assert [p.wait(timeout=60) for p in processes] == [0, 0, 0]
    assert rows(old_store, "SELECT version FROM schema_migrations") == [(1,)]
    store = backends.open_store(old_store)
    try:
        assert verification.verify(store) == []
    finally:
        store.close()


def test_old_started_events_are_upcast_into_todays_model(old_store):
    stored = rows(old_store, "SELECT state FROM stored_events WHERE topic LIKE '%Job.Started'")
    assert len(stored) == 12
    assert all(b"lease_seconds" not in s and b"class_version" not in s for (s,) in stored)
    store = backends.open_store(old_store)
    try:
        started = [r.event for r in export.recorded(store) if isinstance(r.event, Job.Started)]
        assert len(started) == 12
        assert {e.lease_seconds for e in started} == {60.0}  # the tests' workers lease 60 s
        job = store.load(started[0].originator_id, started[0].originator_version)
        assert job.lease_expires_at == started[0].lease_expires_at
    finally:
        store.close()


def test_new_started_events_are_stored_in_the_new_shape(tmp_path):
    from tests.service.cli.test_audit import seed

    settings = make_settings(tmp_path)
    seed(settings, 1)
    [(state,)] = rows(settings, "SELECT state FROM stored_events WHERE topic LIKE '%Started'")
    assert b'"class_version":2' in state and b'"lease_seconds":3600.0' in state


def test_migrations_must_be_numbered_in_order():
    def step(cursor):
        return None

    with pytest.raises(ValueError, match="numbered"):
        migrations.check_order([migrations.Migration(2, "two", step)])
