from __future__ import annotations

import pytest

from tests.support import LiveServer, make_settings


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server per module, for tests that only look at their own jobs and requests (each
    server costs ~0.2 s to start and stop; a suite of rejections needs no fresh database)."""
    live = LiveServer(make_settings(tmp_path_factory.mktemp("shared"))).start()
    yield live
    live.stop()
