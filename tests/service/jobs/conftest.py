from __future__ import annotations

import pytest


@pytest.fixture
def reader(shared_server):
    with shared_server.client("alice") as client:
        yield client
