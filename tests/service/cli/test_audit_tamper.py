"""Tamper evidence: the store edited directly (server stopped), SQLite's file or PostgreSQL's
tables, each kind of change to the stored events is named by `jobtrail audit verify` by job and
version, exit status 1, one line per finding and no traceback; an untouched store verifies
clean. The same cases on both backends: their chains are the same."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from service.store import chain
from tests.service.cli.test_audit import cli, seed
from tests.support import make_settings


class Forger:
    """Edits a store's tables directly, as someone with write access to the database would.
    Statements name the events table `{events}` and its event id `{id}`, with `?` params."""

    def __init__(self, settings):
        self.settings = settings
        self.postgres = settings.database_url.startswith("postgresql:")
        self.events, self.id = (
            ("jobtrail_events", "notification_id") if self.postgres else ("stored_events", "rowid")
        )

    def _sql(self, statement):
        statement = statement.format(events=self.events, id=self.id)
        return statement.replace("?", "%s") if self.postgres else statement

    def _connect(self):
        if self.postgres:
            return psycopg.connect(self.settings.database_url, autocommit=False)
        return sqlite3.connect(self.settings.sqlite_path)

    def edit(self, *statements):
        with self._connect() as db:
            for statement, *params in statements:
                db.execute(self._sql(statement), params)

    def one(self, query, *params):
        with self._connect() as db:
            return db.execute(self._sql(query), params).fetchone()

    def rowid(self, job, version):
        query = "SELECT {id} FROM {events} WHERE originator_id = ? AND originator_version = ?"
        return self.one(query, job.hex, version)[0]

    def hash_of(self, column, event):
        return bytes(self.one(f"SELECT {column} FROM event_hashes WHERE id = ?", event)[0])

    def stored(self, event):
        """The stored event as the chain hashes it: (id, job id hex, version, topic, state)."""
        job = "replace(originator_id::text, '-', '')" if self.postgres else "originator_id"
        query = f"SELECT {{id}}, {job}, originator_version, topic, state FROM {{events}} "
        row = self.one(query + "WHERE {id} = ?", event)
        return (*row[:4], bytes(row[4]))

    def rewrite_state(self, event, old, new):
        """Replaces text in a stored event's state, keeping its type, as a forger would."""
        state = "CAST(replace(state, ?, ?) AS BLOB)"
        if self.postgres:
            state = "convert_to(replace(convert_from(state, 'UTF8'), ?, ?), 'UTF8')"
        self.edit((f"UPDATE {{events}} SET state = {state} WHERE {{id}} = ?", old, new, event))

    def drop_the_chains(self):
        """Forgets the hashes and that they were made: the next open chains the events anew."""
        forget = "DELETE FROM schema_migrations" + (" WHERE version = 3" if self.postgres else "")
        self.edit(("DROP TABLE event_hashes",), (forget,))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def small(request, tmp_path):
    """3 jobs of 10 events, interleaved in the log, on each backend."""
    if request.param == "postgres":
        settings = request.getfixturevalue("pg_settings")
    else:
        settings = make_settings(tmp_path)
    return Forger(settings), seed(settings, 3)


def verify(forger, *args):
    result = cli(forger.settings, "audit", "verify", *args)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def findings(result):
    lines = result.stdout.splitlines()
    assert result.exit_code == 1 and lines[-1].startswith(f"{len(lines) - 1} finding(s); head: ")
    return lines[:-1]


def test_an_untouched_store_verifies_clean_and_its_head_can_be_checked_later(small):
    forger, _ = small
    result = verify(forger)
    assert result.exit_code == 0, result.output
    head = result.stdout.splitlines()[1].split()[1]
    assert head == f"30:{forger.hash_of('log_hash', 30).hex()}"
    assert verify(forger, "--expect-head", head).exit_code == 0
    assert cli(forger.settings, "audit", "verify", "--expect-head", "30:nothex").exit_code == 2


def test_an_edited_event_is_named_by_job_and_version(small):
    forger, ids = small
    event = forger.rowid(ids[1], 5)
    forger.rewrite_state(event, "20.0", "99.0")
    lines = findings(verify(forger))
    assert f"chain job {ids[1]} version 5 (event {event}): the job chain breaks here" in lines[0]
    assert any(
        line.startswith(f"events {event} (job {ids[1]} version 5): differs") for line in lines
    )


def test_an_edited_event_with_its_own_hash_recomputed_breaks_the_log_chain(small):
    forger, ids = small
    event = forger.rowid(ids[0], 3)
    forger.rewrite_state(event, ":0.0", ":1.0")
    previous = forger.hash_of("job_hash", forger.rowid(ids[0], 2))
    forged = chain.job_hash(previous, *forger.stored(event))
    forger.edit(("UPDATE event_hashes SET job_hash = ? WHERE id = ?", forged, event))
    lines = findings(verify(forger))
    assert f"chain job {ids[0]} version 3 (event {event}): the log chain breaks here" in lines[0]
    assert f"chain job {ids[0]} version 4 " in lines[1]  # the next one of the job chains to the old


def test_a_deleted_event_is_named(small):
    forger, ids = small
    gone, after = forger.rowid(ids[2], 6), forger.rowid(ids[2], 7)
    forger.edit(("DELETE FROM {events} WHERE {id} = ?", gone))
    lines = findings(verify(forger))
    assert lines[0] == f"chain event {gone}: its event is gone (deleted)"
    assert any(f"(job {ids[2]} version 7): version follows version 5" in line for line in lines)
    assert any(f"chain job {ids[2]} version 7 (event {after})" in line for line in lines)


def test_an_event_deleted_with_its_hashes_breaks_the_log_chain_at_the_next_one(small):
    forger, ids = small
    gone = forger.rowid(ids[0], 10)  # the job's last event: only the log chain knows it
    forger.edit(
        ("DELETE FROM {events} WHERE {id} = ?", gone),
        ("DELETE FROM event_hashes WHERE id = ?", gone),
    )
    lines = findings(verify(forger))
    assert (
        lines[0].startswith("chain job ")
        and f"(event {gone + 1}): the log chain breaks" in lines[0]
    )


def test_reordered_events_are_named(small):
    forger, ids = small
    first, second = forger.rowid(ids[1], 3), forger.rowid(ids[1], 4)
    swap = "UPDATE {events} SET {id} = ? WHERE {id} = ?"  # the log's order swapped
    forger.edit((swap, -1, first), (swap, first, second), (swap, second, -1))
    lines = findings(verify(forger))
    assert f"chain job {ids[1]} version 3 (event {second}): the job chain breaks here" in lines[
        0
    ] or any(f"chain job {ids[1]} version 3 (event {second})" in line for line in lines)
    assert any(f"(job {ids[1]} version 4): id not after" in line for line in lines)


def test_an_inserted_event_is_named(small):
    forger, ids = small
    forger.edit(
        (
            "INSERT INTO {events} (originator_id, originator_version, topic, state) "
            "SELECT originator_id, 11, topic, state FROM {events} "
            "WHERE originator_id = ? AND originator_version = 10",
            ids[0].hex,
        ),
    )
    lines = findings(verify(forger))
    assert (
        lines[0] == f"chain job {ids[0]} version 11 (event 31): no hash: inserted outside jobtrail"
    )


def test_a_whole_rewrite_is_caught_only_against_a_recorded_head(small):
    """Keyless chains can be recomputed by whoever rewrites the file: the head kept elsewhere
    is what catches it."""
    forger, ids = small
    head = verify(forger).stdout.splitlines()[1].split()[1]
    forger.rewrite_state(forger.rowid(ids[0], 10), '"i":0', '"i":7')
    forger.drop_the_chains()  # every hash recomputed, as a forger would
    opened = cli(forger.settings, "projections", "rebuild")  # opens with migration: chains again
    assert opened.exit_code == 0, opened.output
    assert verify(forger).exit_code == 0
    lines = findings(verify(forger, "--expect-head", head))
    assert lines == [
        f"chain head event 30: the log hash recorded there was {head[3:]}, the "
        f"store's is {forger.hash_of('log_hash', 30).hex()}: "
        "the store was rewritten up to it"
    ]
