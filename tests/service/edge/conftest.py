from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from tests.service.edge.hostile import Bystander
from tests.support import LiveServer


@pytest.fixture(scope="module")
def mallory(shared_server: LiveServer) -> Iterator[httpx.Client]:
    """The owner who sends hostile values."""
    with shared_server.client("mallory") as client:
        yield client


@pytest.fixture(scope="module")
def worker(shared_server: LiveServer) -> Iterator[httpx.Client]:
    with shared_server.client("w-1", "worker") as client:
        yield client


@pytest.fixture(scope="module")
def bystander(shared_server: LiveServer) -> Iterator[Bystander]:
    """Another owner's creates, each sent on another thread while a hostile request is."""
    with shared_server.client("carol") as carol, ThreadPoolExecutor(max_workers=1) as pool:

        def create() -> Future[httpx.Response]:
            body = {"type": "calm.t", "payload": {"n": 1}}
            return pool.submit(carol.post, "/api/v1/jobs", json=body)

        yield create
