"""Rebuilding the read models from the event log gives the live tables back, and `audit verify`
proves (or disproves) that the read models equal the fold of the events (DESIGN.md)."""

from __future__ import annotations

import shutil
import sqlite3
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from projections import leases
from service.cli import main
from service.store import backends, rebuild, verification
from tests import read_models, worker_steps
from tests.support import SECRET, LiveServer, make_settings, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from service.settings import Settings


def _create(client, headers=None, **body) -> dict:
    response = client.post("/api/v1/jobs", json={"type": "t", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _history(server: LiveServer, tag: str, touch: list[str] | None = None) -> list[str]:
    """A varied history through HTTP: keys, patches, progress, logs, retries, deletes."""
    ids: list[str] = []
    with server.client("alice") as alice, server.client("bob") as bob:
        for i in range(10):
            client = alice if i % 3 else bob
            headers = {"Idempotency-Key": f"{tag}-{i}"} if i % 2 == 0 else None
            ids.append(
                _create(
                    client,
                    headers=headers,
                    type=f"kind.{i % 3}",
                    name=f"{tag}-{i}",
                    category=("a", "b", None)[i % 3],
                    priority=("low", "normal", "high")[i % 3],
                    payload={"i": i, "text": "ünïcode", "nested": {"list": [1, None, True]}},
                    metadata={"tag": tag},
                    max_attempts=3,
                )["id"]
            )
        owner = {job_id: (alice if n % 3 else bob) for n, job_id in enumerate(ids)}
        owner[ids[1]].patch(f"/api/v1/jobs/{ids[1]}", json={"starred": True, "name": "renamed"})
        owner[ids[1]].patch(f"/api/v1/jobs/{ids[1]}", json={"metadata": {"v": 2}})
        worker_steps.start(server, ids[2])
        for step in range(1, 4):
            worker_steps.progress(server, ids[2], percent=step * 30.0, completed=step, total=3)
            worker_steps.log(server, ids[2], f"step {step}", level=("info", "warning")[step % 2])
        worker_steps.succeed(server, ids[2], result=[1, 2, 3], result_type="numbers")
        worker_steps.start(server, ids[3])
        worker_steps.fail(server, ids[3], message="flaky", retry=True)
        worker_steps.start(server, ids[4])
        worker_steps.fail(server, ids[4], message="fatal")
        owner[ids[5]].post(f"/api/v1/jobs/{ids[5]}/cancel", json={"reason": "no"})
        worker_steps.start(server, ids[6])
        owner[ids[6]].post(f"/api/v1/jobs/{ids[6]}/cancel")
        worker_steps.acknowledge_cancel(server, ids[6])
        assert owner[ids[7]].delete(f"/api/v1/jobs/{ids[7]}").status_code == 204
        worker_steps.start(server, ids[8])
        assert owner[ids[8]].delete(f"/api/v1/jobs/{ids[8]}").status_code == 204
        replay = owner[ids[2]].post(f"/api/v1/jobs/{ids[2]}/replay")
        ids.append(replay.json()["id"])
        alice.post("/api/v1/cancel")
        for job_id in touch or []:
            with server.client("root", "admin") as admin:
                admin.patch(f"/api/v1/jobs/{job_id}", json={"name": f"{tag} touched"})
                admin.post(f"/api/v1/jobs/{job_id}/cancel")
        if touch:
            with server.client("root", "admin") as admin:
                admin.delete(f"/api/v1/jobs/{touch[0]}")
    return ids


def _sql(path: Path, statement: str, parameters: tuple = ()) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        with db:
            return db.execute(statement, parameters).fetchall()
    finally:
        db.close()


def _with_store(settings: Settings, function):
    store = backends.open_store(settings)
    try:
        return function(store)
    finally:
        store.close()


def _cli(settings: Settings, *args: str):
    env = {
        "JOBTRAIL_DATABASE_URL": f"sqlite:///{settings.sqlite_path}",
        "JOBTRAIL_JWT_SECRET": SECRET,
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> tuple[Path, dict[str, list[tuple]]]:
    """A database file with a varied history, written by a real server, and its read tables."""
    live = LiveServer(make_settings(tmp_path_factory.mktemp("golden"))).start()
    try:
        first = _history(live, "one")
        _history(live, "two", touch=first[:3])
    finally:
        live.stop()
    path = live.settings.sqlite_path
    # The last connection to close checkpointed the WAL: the file alone holds everything.
    assert not path.with_name(path.name + "-wal").exists()
    tables = read_models.dump(path)
    assert len(tables["jobs"]) > 10
    assert len(tables["idempotency_keys"]) == 10
    return path, tables


@pytest.fixture
def history(golden, settings: Settings) -> dict[str, list[tuple]]:
    """A copy of the golden database at `settings`, and its live read tables."""
    path, tables = golden
    shutil.copyfile(path, settings.sqlite_path)
    assert read_models.dump(settings.sqlite_path) == tables
    return tables


def test_rebuild_gives_tables_equal_to_the_live_ones(history, settings):
    applied = _with_store(settings, rebuild.rebuild)
    assert applied == len(history["events"])
    assert read_models.dump(settings.sqlite_path) == history
    assert _with_store(settings, verification.verify) == []


def test_rebuild_twice_gives_the_same_tables(history, settings):
    _with_store(settings, rebuild.rebuild)
    _with_store(settings, rebuild.rebuild)
    assert read_models.dump(settings.sqlite_path) == history


def test_catch_up_when_current_applies_nothing(history, settings):
    assert _with_store(settings, rebuild.catch_up) == 0
    assert read_models.dump(settings.sqlite_path) == history


def test_rebuild_keeps_the_event_log(history, settings):
    before = _sql(settings.sqlite_path, "SELECT * FROM stored_events ORDER BY rowid")
    _with_store(settings, rebuild.rebuild)
    assert _sql(settings.sqlite_path, "SELECT * FROM stored_events ORDER BY rowid") == before


def test_cli_projections_rebuild(history, settings):
    _sql(settings.sqlite_path, "UPDATE jobs SET document = '{}'")
    result = _cli(settings, "projections", "rebuild")
    assert result.exit_code == 0, result.output
    assert f"rebuilt the read models from {len(history['events'])} events" in result.output
    assert read_models.dump(settings.sqlite_path) == history


def test_cli_audit_verify_passes_on_live_tables(history, settings):
    result = _cli(settings, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "the read models equal the fold of the events" in result.output


def test_cli_audit_verify_names_a_tampered_job(history, settings):
    job_id, document = history["jobs"][0][0], history["jobs"][0][-1]
    assert '"starred":false' in document or '"starred":true' in document
    tampered = document.replace('"starred":false', '"starred":true', 1)
    if tampered == document:
        tampered = document.replace('"starred":true', '"starred":false', 1)
    _sql(settings.sqlite_path, "UPDATE jobs SET document = ? WHERE id = ?", (tampered, job_id))
    result = _cli(settings, "audit", "verify")
    assert result.exit_code == 1
    assert job_id in result.output
    assert "jobs" in result.output
    assert "the read models equal" not in result.output
    repaired = _cli(settings, "projections", "rebuild")
    assert repaired.exit_code == 0
    assert _cli(settings, "audit", "verify").exit_code == 0


def test_cli_audit_verify_names_a_tampered_event(history, settings):
    event_id = history["events"][3][0]
    _sql(
        settings.sqlite_path,
        "UPDATE events SET document = replace(document, '\"seq\":', '\"seq\":1') WHERE id = ?",
        (event_id,),
    )
    result = _cli(settings, "audit", "verify")
    assert result.exit_code == 1
    assert f"events {event_id}" in result.output


def test_cli_audit_verify_notices_a_deleted_job_reappearing(history, settings):
    deleted = _sql(
        settings.sqlite_path,
        "SELECT job_id FROM events WHERE type = 'deleted' ORDER BY id LIMIT 1",
    )[0][0]
    row = history["jobs"][0]
    _sql(
        settings.sqlite_path,
        f"INSERT INTO jobs VALUES ({','.join('?' * len(row))})",
        (deleted, -1, *row[2:]),
    )
    result = _cli(settings, "audit", "verify")
    assert result.exit_code == 1
    assert deleted in result.output


def test_cli_audit_verify_notices_wrong_counts_and_tracking(history, settings):
    _sql(settings.sqlite_path, "UPDATE job_counts SET n = n + 1 WHERE n > 0")
    _sql(settings.sqlite_path, "UPDATE tracking SET position = position - 1")
    result = _cli(settings, "audit", "verify")
    assert result.exit_code == 1
    assert "job_counts" in result.output
    assert "tracking" in result.output


def test_catch_up_from_a_mid_position_gives_equal_tables(server, settings):
    first = _history(server, "one")
    server.stop()
    projected_then = read_models.dump(settings.sqlite_path, all_counts=True)
    server.start()
    _history(server, "two", touch=first[:4])
    server.stop()
    live = read_models.dump(settings.sqlite_path)
    read_models.restore(settings.sqlite_path, projected_then)
    applied = _with_store(settings, rebuild.catch_up)
    assert applied == len(live["events"]) - len(projected_then["events"])
    assert read_models.dump(settings.sqlite_path) == live
    assert _with_store(settings, verification.verify) == []


def test_catch_up_after_tracking_set_back_and_newer_rows_deleted(server, settings):
    _history(server, "one")
    with server.client("alice") as alice:
        fresh = [
            _create(alice, headers={"Idempotency-Key": f"fresh-{i}"}, name=f"f{i}")
            for i in range(5)
        ]
    server.stop()
    live = read_models.dump(settings.sqlite_path)
    position = fresh[1]["last_event_id"]
    newer = [job["id"] for job in fresh[2:]]
    marks = ",".join("?" * len(newer))
    db = sqlite3.connect(settings.sqlite_path)
    with db:
        # The three newer jobs were all counted under one key: alice, t, pending, normal.
        db.execute(
            "UPDATE job_counts SET n = n - ? WHERE owner = 'alice' AND type = 't' "
            "AND status = 'pending' AND priority = 1 AND category = '' AND starred = 0 "
            "AND result_type = ''",
            (len(newer),),
        )
        db.execute("DELETE FROM events WHERE id > ?", (position,))
        db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", newer)
        db.execute(f"DELETE FROM idempotency_keys WHERE job_id IN ({marks})", newer)
        db.execute("UPDATE tracking SET position = ?", (position,))
    db.close()
    assert _with_store(settings, rebuild.catch_up) == 3
    assert read_models.dump(settings.sqlite_path) == live
    assert _with_store(settings, verification.verify) == []


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "UPDATE jobs SET owner = 'mallory' WHERE id = ?",
            id="jobs.owner",
        ),
        pytest.param(
            "UPDATE jobs SET status = 'tampered', finished = 1 WHERE id = ?",
            id="jobs.status",
        ),
        pytest.param(
            "UPDATE jobs SET created_at = 0 WHERE id = ?",
            id="jobs.created_at",
        ),
        pytest.param(
            "UPDATE events SET owner = 'mallory' WHERE job_id = ?",
            id="events.owner",
        ),
        pytest.param(
            "UPDATE events SET type = 'log' WHERE job_id = ?",
            id="events.type",
        ),
        pytest.param(
            "UPDATE idempotency_keys SET request_hash = 'x' WHERE job_id = ?",
            id="idempotency_keys.request_hash",
        ),
        pytest.param("UPDATE jobs SET document = '{}' WHERE id = ?", id="jobs.document"),
        pytest.param("UPDATE events SET document = '{}' WHERE job_id = ?", id="events.document"),
        pytest.param(
            "DELETE FROM idempotency_keys WHERE job_id = ?",
            id="idempotency_keys.row",
        ),
    ],
)
def test_cli_audit_verify_notices_any_tampered_column(history, settings, statement):
    job_id = next(
        key[3]
        for key in history["idempotency_keys"]
        if key[3] in {row[0] for row in history["jobs"]}
    )
    assert _sql(settings.sqlite_path, statement, (job_id,)) == []
    result = _cli(settings, "audit", "verify")
    assert result.exit_code == 1, result.output
    assert "the read models equal" not in result.output


def test_a_rebuild_keeps_the_renewals_of_live_leases(tmp_path):
    """A heartbeat moves a lease's expiry without an event: a rebuild that took leases from
    the events alone would put the expiry back, and the reaper would take a running job away
    from its worker."""
    settings = make_settings(tmp_path)
    server = LiveServer(settings).start()
    try:
        with server.client("alice") as alice, server.client("w", "worker") as worker:
            _create(alice, type="t.a")
            claimed = worker.post(
                "/api/v1/workers/claim", json={"types": ["t.a"], "lease_seconds": 60}
            ).json()
            path = f"/api/v1/jobs/{claimed['job']['id']}/heartbeat"
            lease = {"Job-Lease": claimed["lease"]["token"]}

            def renewed() -> bool:  # the expiry moved past the one the claim recorded
                beat = worker.post(path, headers=lease).json()
                return bool(beat["lease_expires_at"] > claimed["lease"]["expires_at"])

            wait_for(renewed)
    finally:
        server.stop()
    store = backends.open_store(settings)
    try:
        before = store.read(lambda cursor: list(leases.every(cursor)))
        rebuild.rebuild(store)
        assert store.read(lambda cursor: list(leases.every(cursor))) == before
        assert verification.verify(store) == []
    finally:
        store.close()
