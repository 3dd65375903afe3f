"""Shared fixtures: a real uvicorn server on a real SQLite file, and real HTTP clients.
The machinery behind them is in tests/support.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import hypothesis
import pytest

from service.settings import Settings
from service.store import postgres as postgres_store
from tests import postgres
from tests.support import LiveServer, make_settings

# The same examples on every run: CI stays green or red for a reason, not by luck of the draw.
# (HYPOTHESIS_PROFILE=explore draws new ones, for hunting bugs locally.)
hypothesis.settings.register_profile("ci", derandomize=True, deadline=None)
hypothesis.settings.register_profile("explore", deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(settings).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("alice") as client:
        yield client


@pytest.fixture
def bob(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("bob") as client:
        yield client


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("root", "admin") as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# PostgreSQL (tests/postgres.py): a server per run, a migrated template, a copy per test.


@pytest.fixture(scope="session")
def pg_server() -> postgres.Server:
    found = postgres.find_server()
    if isinstance(found, str):
        postgres.unavailable(found)
    assert isinstance(found, postgres.Server)
    return found


@pytest.fixture(scope="session")
def pg_template(pg_server: postgres.Server) -> Iterator[str]:
    name = pg_server.create()
    try:
        postgres_store.PostgresEventStore.open(
            postgres.settings_for(Settings(), pg_server.url(name))
        ).close()
        yield name
    finally:
        pg_server.drop(name)


@pytest.fixture
def pg_url(pg_server: postgres.Server, pg_template: str) -> Iterator[str]:
    """The URL of a database of its own for the test, migrated, empty."""
    yield from postgres.databases(pg_server, pg_template)


@pytest.fixture
def pg_settings(tmp_path: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, database_url=pg_url)
