"""Shared fixtures: a real uvicorn server on a real database, and real HTTP clients. The
machinery behind them is in tests/support.py (the server) and tests/postgres.py (PostgreSQL).

Backends. `settings` (and so `server`, `alice`, `bob`, `admin`), `module_settings` and
tests/service/conftest.py's `shared_server` run on the database of `backend`: an SQLite file,
unless the test (or its module's `pytestmark`) carries `pytest.mark.backends("sqlite",
"postgres")`; then it runs once on each, with the ids `[sqlite]` and `[postgres]`. The closest
marker wins: a test in such a module may say `pytest.mark.backends("sqlite")` (id `[sqlite]`).
Only tests that use one of those fixtures are affected; the others run once whatever the marker
says.

What runs on both (tests/README.md has the list and the reasons): every test that writes or
reads jobs through a server (HTTP, the SDK, the CLI's job commands). On SQLite only: tests of
SQLite itself (files, WAL, `serve --workers` on one file, its migrations and audit chains),
tests that never reach the store (rejections answered before it, the OpenAPI document, domain/),
and the browser tests of the dashboard (slow; the pages read what the API reads).

A [postgres] test gets a database of the run that no other test uses meanwhile, as the
template left it (tests/postgres.py `Databases`); `pg_url` still gives a fresh copy of its own
to the tests that need one (they change the database itself, or share it between instances).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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

BACKENDS = ("sqlite", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names): runs the test on each database backend named (sqlite, postgres)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is None or "backend" not in metafunc.fixturenames:
        return
    names = marker.args or BACKENDS
    unknown = set(names) - set(BACKENDS)
    assert not unknown, f"no backend {sorted(unknown)}: {BACKENDS}"
    params = [
        pytest.param(name, id=name, marks=[pytest.mark.postgres] if name == "postgres" else [])
        for name in names
    ]
    # Module scope: a module's [sqlite] tests run first, then its [postgres] ones, so that each
    # module-scoped server is up once per backend.
    metafunc.parametrize("backend", params, indirect=True, scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # One parameter of a test may run on fewer backends than the test does:
    # `pytest.param(..., marks=pytest.mark.backends("sqlite"))`; its other cases are deselected.
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        marker = item.get_closest_marker("backends")
        wanted = marker.args if marker and marker.args else BACKENDS
        (kept if backend is None or backend in wanted else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of the test: "sqlite", unless `pytest.mark.backends` says more."""
    return str(getattr(request, "param", "sqlite"))


@contextlib.contextmanager
def _database(request: pytest.FixtureRequest, backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'jobtrail.db'}"
        return
    databases: postgres.Databases = request.getfixturevalue("pg_databases")
    url = databases.take()
    try:
        yield url
    finally:
        databases.give_back(url)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's backend, the test's alone: a new SQLite file in
    `tmp_path`, or a PostgreSQL database of the run as the template left it."""
    with _database(request, backend, tmp_path) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture(scope="module")
def module_settings(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Settings]]:
    """For the servers a module shares between its tests: `module_settings(name, **overrides)`
    makes settings on the module's backend, each call with an empty database of its own (a
    directory `name` of the run's temporary ones, a PostgreSQL database until the module ends)."""
    with contextlib.ExitStack() as stack:

        def make(name: str, **overrides: Any) -> Settings:
            directory = tmp_path_factory.mktemp(name)
            url = stack.enter_context(_database(request, backend, directory))
            return make_settings(directory, database_url=url, **overrides)

        yield make


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


# PostgreSQL (tests/postgres.py): a server per run, a migrated template, copies of it.


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


@pytest.fixture(scope="session")
def pg_databases(pg_server: postgres.Server, pg_template: str) -> Iterator[postgres.Databases]:
    """The run's reusable copies of the template, for the [postgres] tests of `backend`."""
    databases = postgres.Databases(pg_server, pg_template)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def pg_url(pg_server: postgres.Server, pg_template: str) -> Iterator[str]:
    """The URL of a database of its own for the test, migrated, empty."""
    yield from postgres.databases(pg_server, pg_template)


@pytest.fixture
def pg_settings(tmp_path: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, database_url=pg_url)
