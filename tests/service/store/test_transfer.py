"""Copying a store whose jobs' events interleave, a few events at a time with one job kept
folded: each next event of another job loads it back from the source (from its snapshot past
100 versions), and the copy still verifies with the source's head; snapshots are made anew."""

from __future__ import annotations

import psycopg
import pytest

from service.jobs import commands
from service.store import backends, transfer
from service.store.writer import Writer
from tests.service.store.test_chain_writers import progress, start
from tests.support import make_settings

pytestmark = pytest.mark.postgres


def interleaved(settings, jobs=3, rounds=110):
    """`jobs` running jobs, then `rounds` progress reports on each in turn."""
    store = backends.open_store(settings)
    writer = Writer(store, cache_size=100, max_batch=64, snapshot_interval=100)
    writer.start()
    try:
        spec = commands.JobSpec(type="t")
        create = commands.create_job(spec, owner="o", idempotency_key=None, request_hash=None)
        ids = [writer.call(create).value.job_id for _ in range(jobs)]
        for job_id in ids:
            writer.call(start(job_id))
        for n in range(rounds):
            for job_id in ids:
                writer.call(progress(job_id, n))
    finally:
        writer.stop()
        store.close()
    return ids


def test_interleaved_jobs_are_folded_through_reloads_from_the_source(tmp_path, pg_settings):
    source_settings = make_settings(tmp_path)
    ids = interleaved(source_settings)
    source, target = backends.open_store(source_settings), backends.open_store(pg_settings)
    phases = []
    try:
        copied = transfer.copy_store(
            source,
            target,
            sizes=transfer.Sizes(interval=100, chunk=7, kept=1),
            progress=lambda phase, done, total: phases.append(phase),
        )
    finally:
        source.close()
        target.close()
    assert copied.source == copied.target and copied.source.events == 3 * 112
    assert copied.source.leases == 3
    assert phases[0] == "verifying the source" and phases[-1] == "verifying the target"
    with psycopg.connect(pg_settings.database_url) as db:
        snapshots = db.execute(
            "SELECT originator_id, originator_version FROM jobtrail_snapshots ORDER BY 1"
        ).fetchall()
    assert sorted((str(job_id), 100) for job_id in ids) == [(str(a), v) for a, v in snapshots]
