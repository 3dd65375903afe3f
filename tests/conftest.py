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
