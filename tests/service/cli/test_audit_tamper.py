"""Tamper evidence: the SQLite file edited directly (server stopped), each kind of change
to the stored events is named by `jobtrail audit verify` by job and version, exit status 1,
one line per finding and no traceback; an untouched store verifies clean."""

from __future__ import annotations

import sqlite3

import pytest

from service.store import chain
from tests.service.cli.test_audit import cli, seed
from tests.support import make_settings


@pytest.fixture
def small(tmp_path):
    settings = make_settings(tmp_path)
    return settings, seed(settings, 3)  # 3 jobs of 10 events, interleaved in the log


def edit(settings, *statements):
    with sqlite3.connect(settings.sqlite_path) as db:
        for statement, *params in statements:
            db.execute(statement, params)


def rewrite_state(settings, event, old, new):
    """Replaces text in a stored event's state, keeping it a BLOB, as a forger would."""
    statement = (
        "UPDATE stored_events SET state = CAST(replace(state, ?, ?) AS BLOB) WHERE rowid = ?"
    )
    edit(settings, (statement, old, new, event))


def one(settings, query, *params):
    with sqlite3.connect(settings.sqlite_path) as db:
        return db.execute(query, params).fetchone()


def rowid(settings, job, version):
    query = "SELECT rowid FROM stored_events WHERE originator_id = ? AND originator_version = ?"
    return one(settings, query, job.hex, version)[0]


def verify(settings, *args):
    result = cli(settings, "audit", "verify", *args)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def findings(result):
    lines = result.stdout.splitlines()
    assert result.exit_code == 1 and lines[-1].startswith(f"{len(lines) - 1} finding(s); head: ")
    return lines[:-1]


def test_an_untouched_store_verifies_clean_and_its_head_can_be_checked_later(small):
    settings, _ = small
    result = verify(settings)
    assert result.exit_code == 0, result.output
    head = result.stdout.splitlines()[1].split()[1]
    assert head == f"30:{one(settings, 'SELECT log_hash FROM event_hashes WHERE id = 30')[0].hex()}"
    assert verify(settings, "--expect-head", head).exit_code == 0
    assert cli(settings, "audit", "verify", "--expect-head", "30:nothex").exit_code == 2


def test_an_edited_event_is_named_by_job_and_version(small):
    settings, ids = small
    event = rowid(settings, ids[1], 5)
    rewrite_state(settings, event, "20.0", "99.0")
    lines = findings(verify(settings))
    assert f"chain job {ids[1]} version 5 (event {event}): the job chain breaks here" in lines[0]
    assert any(
        line.startswith(f"events {event} (job {ids[1]} version 5): differs") for line in lines
    )


def test_an_edited_event_with_its_own_hash_recomputed_breaks_the_log_chain(small):
    settings, ids = small
    event = rowid(settings, ids[0], 3)
    rewrite_state(settings, event, ":0.0", ":1.0")
    previous = one(
        settings, "SELECT job_hash FROM event_hashes WHERE id = ?", rowid(settings, ids[0], 2)
    )[0]
    _, job, version, topic, state = one(
        settings, "SELECT rowid, * FROM stored_events WHERE rowid = ?", event
    )
    forged = chain.job_hash(previous, event, job, version, topic, state)
    edit(settings, ("UPDATE event_hashes SET job_hash = ? WHERE id = ?", forged, event))
    lines = findings(verify(settings))
    assert f"chain job {ids[0]} version 3 (event {event}): the log chain breaks here" in lines[0]
    assert f"chain job {ids[0]} version 4 " in lines[1]  # the next one of the job chains to the old


def test_a_deleted_event_is_named(small):
    settings, ids = small
    gone, after = rowid(settings, ids[2], 6), rowid(settings, ids[2], 7)
    edit(settings, ("DELETE FROM stored_events WHERE rowid = ?", gone))
    lines = findings(verify(settings))
    assert lines[0] == f"chain event {gone}: its event is gone (deleted)"
    assert any(f"(job {ids[2]} version 7): version follows version 5" in line for line in lines)
    assert any(f"chain job {ids[2]} version 7 (event {after})" in line for line in lines)


def test_an_event_deleted_with_its_hashes_breaks_the_log_chain_at_the_next_one(small):
    settings, ids = small
    gone = rowid(settings, ids[0], 10)  # the job's last event: only the log chain knows it
    edit(
        settings,
        ("DELETE FROM stored_events WHERE rowid = ?", gone),
        ("DELETE FROM event_hashes WHERE id = ?", gone),
    )
    lines = findings(verify(settings))
    assert (
        lines[0].startswith("chain job ")
        and f"(event {gone + 1}): the log chain breaks" in lines[0]
    )


def test_reordered_events_are_named(small):
    settings, ids = small
    first, second = rowid(settings, ids[1], 3), rowid(settings, ids[1], 4)
    swap = "UPDATE stored_events SET rowid = ? WHERE rowid = ?"  # the log's order swapped
    edit(settings, (swap, -1, first), (swap, first, second), (swap, second, -1))
    lines = findings(verify(settings))
    assert f"chain job {ids[1]} version 3 (event {second}): the job chain breaks here" in lines[
        0
    ] or any(f"chain job {ids[1]} version 3 (event {second})" in line for line in lines)
    assert any(f"(job {ids[1]} version 4): id not after" in line for line in lines)


def test_an_inserted_event_is_named(small):
    settings, ids = small
    edit(
        settings,
        (
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "SELECT originator_id, 11, topic, state FROM stored_events "
            "WHERE originator_id = ? AND originator_version = 10",
            ids[0].hex,
        ),
    )
    lines = findings(verify(settings))
    assert (
        lines[0] == f"chain job {ids[0]} version 11 (event 31): no hash: inserted outside jobtrail"
    )


def test_a_whole_rewrite_is_caught_only_against_a_recorded_head(small):
    """Keyless chains can be recomputed by whoever rewrites the file: the head kept elsewhere
    is what catches it."""
    settings, ids = small
    head = verify(settings).stdout.splitlines()[1].split()[1]
    edit(
        settings,
        (
            "UPDATE stored_events SET state = CAST(replace(state, '\"i\":0', '\"i\":7') AS BLOB) "
            "WHERE originator_id = ? AND originator_version = 10",
            ids[0].hex,
        ),
    )
    with sqlite3.connect(settings.sqlite_path) as db:  # every hash recomputed, as a forger would
        db.execute("DROP TABLE event_hashes")
        db.execute("DELETE FROM schema_migrations")
    opened = cli(settings, "projections", "rebuild")  # opens with migration: chains again
    assert opened.exit_code == 0, opened.output
    assert verify(settings).exit_code == 0
    lines = findings(verify(settings, "--expect-head", head))
    assert lines == [
        f"chain head event 30: the log hash recorded there was {head[3:]}, the "
        f"store's is {one(settings, 'SELECT log_hash FROM event_hashes WHERE id = 30')[0].hex()}: "
        "the store was rewritten up to it"
    ]
