"""The real PostgreSQL server for the tests that need one (127.0.0.1:5432, trust auth).

Each test run makes one database, `jobtrail_test_<random>_0`, migrated once: the template.
A test that asks for `pg_url` gets a copy of it of its own (CREATE DATABASE … TEMPLATE, cheaper
than migrating anew), dropped after the test. The tests that run on both backends (`backend`,
tests/conftest.py) take theirs from `Databases` instead: copies made once per run and reused,
each brought back to the template's content before it is handed out (~10 ms, where a copy and
its drop take 0.1 to 1 s, the most under the disk load of a busy machine). Every database a run
makes is dropped when its test or the run ends. Where no server answers, the tests skip, saying
why; with JOBTRAIL_REQUIRE_POSTGRES=1 (CI, .ci/run) they fail instead.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from service.settings import Settings

HOST, PORT = "127.0.0.1", 5432
USERS = ("postgres", "root")  # whichever the server knows
ADMIN_DATABASES = ("test", "postgres")
REQUIRED = os.environ.get("JOBTRAIL_REQUIRE_POSTGRES") == "1"


@dataclasses.dataclass(frozen=True)
class Server:
    user: str
    admin_database: str
    run_id: str
    _copies: itertools.count = dataclasses.field(default_factory=itertools.count)

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(
            host=HOST, port=PORT, user=self.user, dbname=self.admin_database, autocommit=True
        )

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{HOST}:{PORT}/{dbname}"

    def create(self, *, template: str | None = None) -> str:
        name = f"jobtrail_test_{self.run_id}_{next(self._copies)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with self.admin() as admin:
            admin.execute(statement)
        return name

    def drop(self, name: str) -> None:
        with self.admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def find_server(host: str = HOST, port: int = PORT) -> Server | str:
    """The server, or why there is none."""
    reasons = []
    for user, dbname in itertools.product(USERS, ADMIN_DATABASES):
        try:
            psycopg.connect(
                host=host, port=port, user=user, dbname=dbname, connect_timeout=3
            ).close()
        except psycopg.OperationalError as exc:
            reasons.append(f"{user}@{dbname}: {str(exc).strip().splitlines()[-1]}")
            continue
        return Server(user=user, admin_database=dbname, run_id=secrets.token_hex(4))
    return f"no PostgreSQL server at {host}:{port} ({'; '.join(reasons)})"


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"JOBTRAIL_REQUIRE_POSTGRES=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def settings_for(base: Settings, url: str) -> Settings:
    return dataclasses.replace(base, database_url=url)


def databases(server: Server, template: str) -> Iterator[str]:
    """A fresh copy of the migrated template, dropped afterwards."""
    name = server.create(template=template)
    try:
        yield server.url(name)
    finally:
        server.drop(name)


@dataclasses.dataclass(frozen=True)
class _Content:
    """What a migrated, empty database holds: its tables' rows, its sequences' positions."""

    rows: dict[str, list[tuple[Any, ...]]]
    sequences: dict[str, tuple[int, bool]]  # setval's value and is_called

    @classmethod
    def of(cls, db: psycopg.Connection) -> _Content:
        tables = db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
        rows = {
            table: db.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall()
            for (table,) in tables
        }
        sequences = {
            name: (1, False) if last is None else (int(last), True)
            for name, last in db.execute(
                "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
            ).fetchall()
        }
        return cls(rows=rows, sequences=sequences)

    def restore(self, db: psycopg.Connection) -> None:
        """Brings `db`, a copy of the database this content was read from, back to it."""
        for table, rows in self.rows.items():
            name = sql.Identifier(table)
            db.execute(sql.SQL("DELETE FROM {}").format(name))
            if rows:
                marks = sql.SQL(", ").join(sql.Placeholder() * len(rows[0]))
                insert = sql.SQL("INSERT INTO {} VALUES ({})").format(name, marks)
                with db.cursor() as cursor:
                    cursor.executemany(insert, rows)
        for sequence, (value, is_called) in self.sequences.items():
            db.execute("SELECT setval(%s, %s, %s)", (sequence, value, is_called))


class Databases:
    """Copies of the migrated template, made as needed and reused within the run.

    `take()` hands one out as the template left it: every connection still open to it is cut
    first (whatever the previous test left running must not write into the next one's data;
    a server that is stopped holds no state of it), then its rows and sequences are brought
    back in one transaction. A copy whose tables are not the template's any more (a test
    changed the schema) is dropped and made anew.
    """

    def __init__(self, server: Server, template: str) -> None:
        self.server = server
        self._template = template
        with psycopg.connect(server.url(template)) as db:
            self._content = _Content.of(db)
        self._free: list[str] = []
        self._made: list[str] = []

    def take(self) -> str:
        """The URL of a database that no one else uses until it is given back."""
        if not self._free:
            name = self.server.create(template=self._template)
            self._made.append(name)
            with self.server.admin() as admin:
                # A commit does not wait for its WAL to reach the disk: what every session
                # sees, and when, is unchanged; only a crash of the server could lose the
                # newest commits, of a database the run throws away anyway.
                admin.execute(
                    sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
                        sql.Identifier(name)
                    )
                )
            return self.server.url(name)
        name = self._free.pop()
        if not self._reset(name):
            self.server.drop(name)
            self._made.remove(name)
            return self.take()
        return self.server.url(name)

    def give_back(self, url: str) -> None:
        self._free.append(url.rpartition("/")[2])

    def close(self) -> None:
        for name in self._made:
            self.server.drop(name)
        self._made.clear()
        self._free.clear()

    def _reset(self, name: str) -> bool:
        """Whether `name` is as the template left it now (False: it cannot be made so)."""
        with psycopg.connect(self.server.url(name)) as db:
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            tables = db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
            if {table for (table,) in tables} != set(self._content.rows):
                return False
            try:
                self._content.restore(db)
            except psycopg.Error:  # a column or a type changed
                db.rollback()
                return False
        return True
