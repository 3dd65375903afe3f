"""The hash chains written by two stores on one file (two processes, as `serve --workers 2`)
taking turns on the same jobs, losing races and retrying: each store keeps the newest hash of
the jobs it wrote, and that must never chain an event to a hash the other store superseded."""

from __future__ import annotations

from datetime import timedelta

from service import errors
from service.jobs import commands
from service.store import backends, verification
from service.store.writer import Writer
from tests.support import make_settings


def progress(job_id, n):
    def command(uow):
        uow.get(job_id).report_progress({"percent": float(n)}, now=uow.now)

    return command


def start(job_id):
    def command(uow):
        expires = uow.now + timedelta(hours=1)
        uow.get(job_id).start(worker_id="w", lease_token="l", lease_expires_at=expires,
                              now=uow.now)  # fmt: skip

    return command


def test_two_writers_on_one_file_keep_the_chains_whole(tmp_path):
    settings = make_settings(tmp_path)
    stores = [backends.open_store(settings) for _ in range(2)]
    # No aggregate cache: a writer loads the job each time, as after the other wrote it.
    writers = [Writer(store, cache_size=0, max_batch=64, snapshot_interval=100) for store in stores]
    for writer in writers:
        writer.start()
    try:
        spec = commands.JobSpec(type="t")
        create = commands.create_job(spec, owner="o", idempotency_key=None, request_hash=None)
        jobs = [writers[0].call(create).value.job_id for _ in range(3)]
        for job_id in jobs:
            writers[1].call(start(job_id))
        for n in range(60):  # alternating writers, and both at once on the same job
            futures = [writers[(n + k) % 2].submit(progress(jobs[n % 3], n)) for k in range(2)]
            for future in futures:
                try:
                    future.result(30)
                except errors.ConcurrentChange:  # lost the race: nothing written
                    pass
        assert verification.verify(stores[0]) == []
    finally:
        for writer in writers:
            writer.stop()
        for store in stores:
            store.close()
