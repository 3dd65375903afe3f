"""`jobtrail audit` on the event store itself: export streams the whole log (100k events) at
constant memory as the API renders it, history folds one job event by event, and verify
checks the read models and the log's order, naming every difference without a traceback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from service.jobs import commands
from service.store import backends
from service.store.writer import Writer
from tests.support import make_settings

JOBS = 10_000
EVENTS_PER_JOB = 10  # created, started, 7 progress, succeeded
_WINDOW = 2000
JOBTRAIL = str(Path(sys.executable).parent / "jobtrail")


def whole_job(i: int):
    """One command: a job created, run with progress and succeeded (10 events)."""
    spec = commands.JobSpec(type="audit.seed", name=f"job {i}", payload={"i": i})

    def command(uow):
        job_id = commands.create_job(spec, owner=f"o{i % 3}", idempotency_key=None,
                                     request_hash=None)(uow).job_id  # fmt: skip
        job = uow.get(job_id)
        expires = uow.now + timedelta(hours=1)
        job.start(worker_id="w", lease_token=uuid.uuid4().hex, lease_expires_at=expires,
                  now=uow.now)  # fmt: skip
        for step in range(7):
            job.report_progress({"percent": step * 10.0, "stage": "s"}, now=uow.now)
        job.succeed(result={"i": i}, result_type="n", now=uow.now)
        return job_id

    return command


def seed(settings, jobs: int) -> list[uuid.UUID]:
    """Through the real writer (group commits, read models in the same transaction)."""
    store = backends.open_store(settings)
    writer = Writer(store, cache_size=1000, max_batch=settings.max_batch,
                    snapshot_interval=settings.snapshot_interval)  # fmt: skip
    writer.start()
    try:
        pending, ids = [], []
        for i in range(jobs):
            pending.append(writer.submit(whole_job(i)))
            if len(pending) >= _WINDOW:
                ids += [f.result(60).value for f in pending]
                pending = []
        ids += [f.result(60).value for f in pending]
    finally:
        writer.stop()
        store.close()
    return ids


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("audit"))
    ids = seed(settings, JOBS)
    return settings, ids


def env_of(settings):
    return {
        "JOBTRAIL_DATABASE_URL": settings.database_url,
        "JOBTRAIL_DATA_DIR": str(settings.data_dir),
    }


def cli(settings, *args):
    return CliRunner().invoke(main, list(args), env=env_of(settings))


def read_model_documents(settings, after=0):
    """The events as the API serves them (the read model's documents), in id order."""
    with sqlite3.connect(settings.sqlite_path) as db:
        query = "SELECT document FROM events WHERE id > ? ORDER BY id"
        return [row[0] for row in db.execute(query, (after,))]


def export_process(settings, out_path, *args):
    """`jobtrail audit export` as a process writing to a file: its exit status and its peak
    RSS (KiB). (Its speed is measured by `python -m bench audit`, not here.)"""
    env = {**os.environ, **env_of(settings)}
    with open(out_path, "w") as out:
        process = subprocess.Popen([JOBTRAIL, "audit", "export", *args], env=env, stdout=out)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
    return process.returncode, usage.ru_maxrss


@pytest.mark.slow
def test_export_streams_100k_events_at_flat_memory_as_the_api_renders_them(big, tmp_path):
    settings, ids = big
    code, rss_all = export_process(settings, tmp_path / "all.ndjson")
    assert code == 0
    lines = (tmp_path / "all.ndjson").read_text().splitlines()
    assert len(lines) == JOBS * EVENTS_PER_JOB
    assert lines == read_model_documents(settings)  # the API's rendering, the API's ids
    code, rss_tenth = export_process(settings, tmp_path / "tail.ndjson", "--after", "90000")
    assert code == 0 and (tmp_path / "tail.ndjson").read_text().splitlines() == lines[90000:]
    assert rss_all <= 1.2 * rss_tenth, (rss_all, rss_tenth)  # ten times the events
    one = cli(settings, "audit", "export", "--job", str(ids[5]), "--after", "4").stdout
    events = [json.loads(line) for line in one.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, 11)) and events[0]["id"] > 4
    assert events == [json.loads(line) for line in lines if f'"job_id":"{ids[5]}"' in line]


@pytest.mark.slow
def test_verify_passes_on_100k_events(big):
    settings, _ = big
    result = cli(settings, "audit", "verify")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "the hash chains hold and the read models equal the fold of the events"
    assert lines[1].startswith(f"head: {JOBS * EVENTS_PER_JOB}:") and len(lines) == 2


def test_history_shows_each_event_and_what_it_changed(big):
    settings, ids = big
    steps = [
        json.loads(line)
        for line in cli(settings, "audit", "history", str(ids[7]), "--json").stdout.splitlines()
    ]
    assert [s["event"]["type"] for s in steps] == [
        "created",
        "started",
        *["progress"] * 7,
        "succeeded",
    ]
    assert steps[0]["changed"]["status"] == [None, "pending"]
    assert steps[1]["changed"]["status"] == ["pending", "running"]
    assert steps[3]["changed"] == {"progress.percent": [0.0, 10.0]}
    assert steps[-1]["job"]["status"] == "succeeded" and steps[-1]["job"]["result"] == {"i": 7}
    assert [s["job"]["version"] for s in steps] == list(range(1, 11))
    store = backends.open_store(settings)
    try:
        for step in steps:  # the state after each event is the store's own as-of load
            assert step["job"]["status"] == store.load(ids[7], step["event"]["seq"]).status
    finally:
        store.close()
    text = cli(settings, "audit", "history", str(ids[7])).stdout
    assert "#2 started" in text and 'status: "pending" -> "running"' in text
    assert "progress.percent: 0.0 -> 10.0" in text


def test_audit_errors_are_one_line(small, tmp_path):
    settings, _ = small
    missing = cli(settings, "audit", "history", str(uuid.uuid4()))
    assert (
        missing.exit_code == 1
        and missing.stderr.startswith("Error: job ")
        and missing.stderr.count("\n") == 1
    )
    assert cli(settings, "audit", "history", "nope").exit_code == 2
    assert cli(settings, "audit", "export", "--job", "nope").exit_code == 2
    elsewhere = make_settings(tmp_path / "nowhere")
    absent = cli(elsewhere, "audit", "export")
    assert absent.exit_code == 1 and absent.stderr.startswith("Error: no event store at ")
    assert not (tmp_path / "nowhere").exists()  # nothing created
    (tmp_path / "not-a-db").write_text("hello")
    broken = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'not-a-db'}")
    failed = cli(broken, "audit", "verify")
    assert failed.exit_code == 1 and failed.stderr.startswith("Error: cannot open the event store")
    assert failed.stderr.count("\n") == 1


@pytest.fixture
def small(tmp_path):
    settings = make_settings(tmp_path)
    return settings, seed(settings, 3)


def stored(settings, statement, *params):
    with sqlite3.connect(settings.sqlite_path) as db:
        db.execute(statement, params)


def test_verify_names_a_missing_event_by_job_and_version(small):
    settings, ids = small
    stored(
        settings,
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 4",
        ids[1].hex,
    )
    result = cli(settings, "audit", "verify")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"(job {ids[1]} version 5): version follows version 3" in result.stdout
    assert f"jobs {ids[1]} (version 5): its events do not fold" in result.stdout
    assert "not in the fold of the events" in result.stdout  # its read-model row stays
    history = cli(settings, "audit", "history", str(ids[1]))
    assert history.exit_code == 0 and history.stdout.count("\n#") == 2  # up to the gap


def test_verify_names_reordered_versions(small):
    settings, ids = small
    job = ids[2].hex
    renumber = (
        "UPDATE stored_events SET originator_version = ? "
        "WHERE originator_id = ? AND originator_version = ?"
    )
    for old, new in ((3, 99), (4, 3), (99, 4)):  # versions 3 and 4 swapped
        stored(settings, renumber, new, job, old)
    result = cli(settings, "audit", "verify")
    assert result.exit_code == 1 and "Traceback" not in result.output
    # In version order the ids run backwards, and both events' hashes no longer match.
    assert f"(job {ids[2]} version 4): id not after the job's previous event" in result.stdout
    assert f"chain job {ids[2]} version 3 (event " in result.stdout
    assert f"chain job {ids[2]} version 4 (event " in result.stdout
    assert f"events {ids[0]}" not in result.stdout  # the other jobs are fine
