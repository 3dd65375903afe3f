"""The real PostgreSQL server for the tests that need one (127.0.0.1:5432, trust auth).

Each test run makes one database, `jobtrail_test_<random>`, migrated once, and each test gets
a copy of it (CREATE DATABASE … TEMPLATE, cheaper than migrating anew); every one of them is
dropped when its test or the run ends. Where no server answers, the tests skip, saying why;
with JOBTRAIL_REQUIRE_POSTGRES=1 (CI, .ci/run) they fail instead.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import secrets
from collections.abc import Iterator

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
