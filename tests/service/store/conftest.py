from __future__ import annotations

import pytest

from tests.support import make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request, tmp_path):
    """The settings of an empty store on each backend."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_settings")
    return make_settings(tmp_path)
