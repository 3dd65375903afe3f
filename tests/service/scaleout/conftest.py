"""Two `jobtrail serve` processes on one PostgreSQL database (tests/instances.py).

`pair`: A and B, one pair for the package, on a database of its own, for the scenarios that
only look at their own jobs (each uses job types and owners of its own). A scenario that kills
an instance kills a `victim` of its own, started for it on the same database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests import instances, postgres

# Retries come due 0.1 to 0.2 s after a failure (the default base is 1 s).
ENV = {"JOBTRAIL_RETRY_BASE_SECONDS": "0.2"}


@pytest.fixture(scope="package")
def pair(pg_server, pg_template, tmp_path_factory) -> Iterator[instances.Instances]:
    database = contextlib.contextmanager(postgres.databases)
    with (
        database(pg_server, pg_template) as url,
        instances.running(tmp_path_factory.mktemp("pair"), url, 2, **ENV) as served,
    ):
        yield served


@pytest.fixture
def victim(pair) -> Iterator[instances.Instance]:
    """A third instance on the pair's database, for the test to kill -9."""
    (instance,) = pair.start(1)
    try:
        yield instance
    finally:
        if not instance.killed:
            instance.kill()
