from __future__ import annotations

import pytest

from tests.support import LiveServer


@pytest.fixture(scope="module")
def shared_server(module_settings):
    """One server per module, for tests that only look at their own jobs and requests (each
    server costs ~0.2 s to start and stop; a suite of rejections needs no fresh database). On
    the module's backend (tests/conftest.py)."""
    live = LiveServer(module_settings("shared")).start()
    yield live
    live.stop()
