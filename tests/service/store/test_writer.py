"""The group-commit writer, driven directly on each backend (a real SQLite file, a real
PostgreSQL database)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from domain import errors as domain_errors
from service.jobs import commands
from service.store import backends
from service.store.writer import Writer


@pytest.fixture
def store(store_settings):
    store = backends.open_store(store_settings)
    yield store
    store.close()


def _create(writer, **fields):
    spec = commands.JobSpec(type="t", **fields)
    command = commands.create_job(spec, owner="o", idempotency_key=None, request_hash=None)
    return writer.call(command).value.job_id


def _start(job_id):
    def command(uow):
        uow.get(job_id).start(
            worker_id="w", lease_token="l", lease_expires_at=uow.now + timedelta(hours=1),
            now=uow.now,
        )  # fmt: skip

    return command


def _progress(job_id, percent):
    def command(uow):
        uow.get(job_id).report_progress({"percent": percent}, now=uow.now)

    return command


def test_one_group_commits_many_commands_and_snapshots_at_every_interval(store, store_settings):
    writer = Writer(store, snapshot_interval=10)
    writer.start()
    job_id = _create(writer)
    writer.call(_start(job_id))
    writer.stop()
    # Queued before the writer starts: they are taken as one group.
    writer = Writer(store, snapshot_interval=10)
    futures = [writer.submit(_progress(job_id, float(n))) for n in range(95)]
    writer.start()
    for future in futures:
        future.result(timeout=30)
    writer.stop()
    assert writer.batches == 1

    table = "jobtrail_snapshots" if store_settings.is_postgres else "stored_snapshots"

    def snapshot_versions(c):
        c.execute(f"SELECT originator_version FROM {table} ORDER BY originator_version")
        return [v for (v,) in c.fetchall()]

    versions = store.read(snapshot_versions)
    assert versions == list(range(10, 97, 10))
    assert store.load(job_id).progress["percent"] == 94.0
    for version in (15, 50, 97):  # any version loads from the snapshot below it
        assert store.load(job_id, version).version == version


def test_a_command_that_breaks_a_rule_fails_alone(store):
    writer = Writer(store)
    writer.start()
    job_id = _create(writer)
    writer.stop()
    writer = Writer(store)
    good = writer.submit(_start(job_id))
    bad = writer.submit(_start(job_id))  # a pending job starts once: the second is refused
    also_good = writer.submit(_progress(job_id, 1.0))
    writer.start()
    good.result(timeout=30)
    also_good.result(timeout=30)
    with pytest.raises(domain_errors.InvalidTransition):
        bad.result(timeout=30)
    writer.stop()
    assert writer.batches == 1
    assert store.load(job_id).version == 3


def test_a_command_that_raises_after_changing_a_job_leaves_no_trace(store):
    writer = Writer(store)
    writer.start()
    job_id = _create(writer)
    writer.stop()

    def broken(uow):
        uow.get(job_id).update({"name": "half-done"}, now=uow.now)
        raise RuntimeError("bug after a change")

    writer = Writer(store)
    before = writer.submit(commands.update_job(job_id, _Owner(), {"starred": True}))
    failing = writer.submit(broken)
    after = writer.submit(commands.update_job(job_id, _Owner(), {"name": "ok"}))
    writer.start()
    before.result(timeout=30)
    after.result(timeout=30)
    with pytest.raises(RuntimeError):
        failing.result(timeout=30)
    writer.stop()
    job = store.load(job_id)
    assert (job.starred, job.name, job.version) == (True, "ok", 3)


@dataclasses.dataclass(frozen=True)
class _Owner:
    sub: str = "o"
    owner_filter: str | None = "o"


@pytest.mark.parametrize(
    "poison",
    [
        pytest.param(float("inf"), id="infinity-fails-the-event-encoding"),
        pytest.param("\ud800", id="lone-surrogate-fails-the-event-encoding"),
    ],
)
def test_data_that_cannot_be_stored_fails_only_its_own_command(store, poison):
    # The edge refuses such values; the writer must not rely on it: one command's data,
    # whatever it is, never fails the other commands of its group.
    writer = Writer(store)
    specs = [commands.JobSpec(type="t", payload={"n": n}) for n in range(63)]
    specs.insert(41, commands.JobSpec(type="t", payload={"x": poison}, metadata={"x": poison}))
    futures = [
        writer.submit(commands.create_job(s, owner="o", idempotency_key=None, request_hash=None))
        for s in specs
    ]
    writer.start()
    with pytest.raises(Exception) as failed:
        futures.pop(41).result(timeout=30)
    created = [future.result(timeout=30).value.job_id for future in futures]
    writer.stop()
    assert not isinstance(failed.value, domain_errors.DomainError)
    assert [store.load(i).payload["n"] for i in created] == list(range(63))
    assert store.max_position() == 63
    # Split in halves until the culprit is alone: one commit per level, not one per command.
    assert writer.batches == 6
