"""Configuration from the environment (docs/API.md, "Running" and "Limits")."""

from __future__ import annotations

import pytest

from service.settings import ConfigError, Limits, Settings


def test_limits_come_from_the_environment():
    env = {
        "JOBTRAIL_LIMIT_BODY_BYTES": "2048",
        "JOBTRAIL_LIMIT_FIELD_BYTES": "512",
        "JOBTRAIL_LIMIT_LOG_MESSAGE_BYTES": "100",
        "JOBTRAIL_LIMIT_CHILDREN": "3",
    }
    assert Settings.from_env(env).limits == Limits(
        body_bytes=2048, field_bytes=512, log_message_bytes=100, children=3
    )
    assert Settings.from_env({}).limits == Limits()


@pytest.mark.parametrize("bad", ["0", "-5", "1.5", "lots"])
def test_a_limit_that_is_not_a_positive_integer_stops_the_command(bad):
    with pytest.raises(ConfigError, match="JOBTRAIL_LIMIT_CHILDREN"):
        Settings.from_env({"JOBTRAIL_LIMIT_CHILDREN": bad})
