"""`jobtrail worker --handlers module:object`: loading the handlers, and refusing bad ones."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from service import demo
from service.cli import main
from service.sdk import runner


def test_handlers_load_from_module_and_object() -> None:
    assert runner.load_handlers("service.demo:HANDLERS") == demo.HANDLERS


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param("service.demo", id="no-object"),
        pytest.param("service.nope:HANDLERS", id="no-module"),
        pytest.param("service.demo:NOPE", id="no-attribute"),
        pytest.param("service.demo:count", id="not-a-mapping"),
    ],
)
def test_bad_handlers_are_a_usage_error(reference: str) -> None:
    result = CliRunner().invoke(main, ["worker", "--handlers", reference])
    assert result.exit_code == 2
    assert "--handlers" in result.output
