"""What only the PostgreSQL store must show: its schema made once by instances starting
together, writers of several instances taking turns on the events table's lock (ids in commit
order, nothing filled in behind a tailer), and their caches following each other's writes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest

from service.jobs import commands
from service.store import backends, verification
from service.store.base import ProjectionBatch
from service.store.writer import Writer
from tests import postgres
from tests.support import make_settings, wait_for

pytestmark = pytest.mark.postgres


def _create(writer, owner="o"):
    """A running job (progress needs one)."""
    spec = commands.JobSpec(type="t")
    job_id = writer.call(
        commands.create_job(spec, owner=owner, idempotency_key=None, request_hash=None)
    ).value.job_id

    def start(uow):
        uow.get(job_id).start(
            worker_id="w", lease_token="l", lease_expires_at=uow.now + timedelta(hours=1),
            now=uow.now,
        )  # fmt: skip

    writer.call(start)
    return job_id


def _progress(job_id, percent):
    def command(uow):
        uow.get(job_id).report_progress({"percent": percent}, now=uow.now)

    return command


def _connect(url):
    return psycopg.connect(url, autocommit=True)


def test_instances_starting_at_once_make_the_schema_once(pg_server, tmp_path):
    name = pg_server.create()  # empty: no template
    try:
        settings = make_settings(tmp_path, database_url=pg_server.url(name))
        start = threading.Barrier(4)

        def open_store():
            start.wait()
            return backends.open_store(settings)

        with ThreadPoolExecutor(4) as pool:
            stores = list(pool.map(lambda _: open_store(), range(4)))
        try:
            assert [store.migrate() for store in stores] == [[], [], [], []]
            writer = Writer(stores[0])
            writer.start()
            _create(writer)
            writer.stop()
            assert [store.max_position() for store in stores] == [2, 2, 2, 2]
        finally:
            for store in stores:
                store.close()
        with _connect(settings.database_url) as db:
            rows = db.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()
        assert [version for version, _ in rows] == [1, 2, 3]
    finally:
        pg_server.drop(name)


def test_a_writer_waits_for_another_instances_transaction_and_gets_later_ids(pg_settings):
    first, second = backends.open_store(pg_settings), backends.open_store(pg_settings)
    try:
        writer = Writer(first)
        writer.start()
        job_id = _create(writer)
        writer.stop()
        job = first.load(job_id)
        job.report_progress({"percent": 1.0}, now=job.modified_on)
        batch = ProjectionBatch(events=list(job.collect_events()), jobs={job_id: job})
        other = Writer(second)
        other.start()
        with first.transaction() as cursor:
            # The lock is held from the start, before anything is written: the other
            # instance's writer waits for it, so it can neither take an id before this
            # transaction's nor change what this one has read.
            late = other.submit(lambda uow: _create_in(uow))
            with _connect(pg_settings.database_url) as db:
                wait_for(lambda: _waiting_for_a_lock(db))
            first.record(cursor, batch)
            assert not late.done()
        created = late.result(timeout=30)
        other.stop()
        assert batch.positions == [3]
        assert created.position == 4
    finally:
        first.close()
        second.close()


def _create_in(uow):
    return commands.create_job(
        commands.JobSpec(type="t"), owner="o", idempotency_key=None, request_hash=None
    )(uow)


def _waiting_for_a_lock(db) -> bool:
    row = db.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
    return bool(row and row[0])


def test_concurrent_writers_of_several_instances_never_fill_in_behind_a_tailer(pg_settings):
    instances = [backends.open_store(pg_settings) for _ in range(3)]
    writers = [Writer(store) for store in instances]
    for writer in writers:
        writer.start()
    done = threading.Event()
    seen: list[int] = []

    def tail():  # as the live fan-out tails the events index: "ids after the last I saw"
        with _connect(pg_settings.database_url) as db:
            while True:
                finished = done.is_set()
                last = seen[-1] if seen else 0
                rows = db.execute("SELECT id FROM events WHERE id > %s ORDER BY id", (last,))
                seen.extend(row[0] for row in rows.fetchall())
                if finished:
                    return

    def work(writer, n):
        jobs = [_create(writer, owner=f"o{n}") for _ in range(10)]
        for step in range(10):
            futures = [writer.submit(_progress(job_id, float(step))) for job_id in jobs]
            for future in futures:
                future.result(timeout=30)
        return jobs

    tailer = threading.Thread(target=tail)
    tailer.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            jobs = list(pool.map(work, writers * 2, range(6)))
    finally:
        done.set()
        tailer.join()
        for writer in writers:
            writer.stop()
    try:
        with _connect(pg_settings.database_url) as db:
            stored = [r[0] for r in db.execute("SELECT notification_id FROM jobtrail_events")]
            projected = [r[0] for r in db.execute("SELECT id FROM events ORDER BY id")]
        assert len(stored) == 6 * 10 * 12
        assert seen == projected == sorted(stored)
        assert all(job.version == 12 for group in jobs for job in map(instances[0].load, group))
        assert verification.verify(instances[0]) == []
    finally:
        for store in instances:
            store.close()


def test_each_instance_writes_on_the_newest_state_whoever_changed_it(pg_settings):
    # Every instance's writer caches jobs; a write of another instance must evict them.
    instances = [backends.open_store(pg_settings) for _ in range(2)]
    writers = [Writer(store) for store in instances]
    for writer in writers:
        writer.start()
    try:
        job_id = _create(writers[0])
        for step in range(20):
            writers[step % 2].call(_progress(job_id, float(step)))
        job = instances[1].load(job_id)
        assert (job.version, job.progress["percent"]) == (22, 19.0)
        assert verification.verify(instances[0]) == []
    finally:
        for writer in writers:
            writer.stop()
        for store in instances:
            store.close()


def test_an_unreachable_server_is_reported_why():
    reason = postgres.find_server(port=9)  # discard: nothing answers PostgreSQL there
    assert isinstance(reason, str)
    assert reason.startswith("no PostgreSQL server at 127.0.0.1:9")
