"""What the commands share: the server's settings, the client commands' `--url`, `--token` and
`--json` options, and the one place where a client error becomes a one-line message."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from typing import TYPE_CHECKING, Any, TypeVar

import click

from service.sdk import errors
from service.sdk.client import Client
from service.settings import ConfigError, Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

F = TypeVar("F", bound="Callable[..., Any]")

# Exit statuses of client commands: 0 done, 1 the request failed (unreachable server, or an
# error answer), 2 a usage error (click's). `watch` also says how the job ended (see there).
FAILED = 1


def settings() -> Settings:
    """The service's settings from the environment; an invalid value is a usage error."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def default_url() -> str:
    host = os.environ.get("JOBTRAIL_HOST") or "127.0.0.1"
    port = os.environ.get("JOBTRAIL_PORT") or "8000"
    return f"http://{host}:{port}"


def connection(command: F) -> F:
    """Adds `--url` and `--token` (or JOBTRAIL_URL, JOBTRAIL_TOKEN) to a client command, and
    passes it a connected `client`, closed after the command."""

    @click.option(
        "--url",
        envvar="JOBTRAIL_URL",
        default=None,
        help="The server [env JOBTRAIL_URL; else http://JOBTRAIL_HOST:JOBTRAIL_PORT].",
    )
    @click.option("--token", envvar="JOBTRAIL_TOKEN", default=None, help="[env JOBTRAIL_TOKEN]")
    @functools.wraps(command)
    def with_client(url: str | None, token: str | None, **kwargs: Any) -> Any:
        if not token:
            raise click.UsageError(
                "no token: give --token or set JOBTRAIL_TOKEN (`jobtrail token --sub NAME`)"
            )
        with Client(url or default_url(), token) as client, reported():
            return command(client=client, **kwargs)

    return with_client  # type: ignore[return-value]


def json_output(command: F) -> F:
    """Adds `--json`: print the API's JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")(command)


def echo_json(value: Any) -> None:
    """One JSON value on one line (the API's own object)."""
    click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


class Failed(click.ClickException):
    """A request that failed: one line on stderr, exit status 1."""

    exit_code = FAILED


@contextlib.contextmanager
def reported(failure: type[Failed] = Failed) -> Iterator[None]:
    """The client's errors as one-line messages, raised as `failure` (its exit status)."""
    try:
        yield
    except errors.TransportError as exc:
        raise failure(f"{exc} (is the server running? --url / JOBTRAIL_URL)") from exc
    except errors.UnauthorizedError as exc:
        raise failure(f"{exc} (check --token / JOBTRAIL_TOKEN)") from exc
    except errors.ApiError as exc:
        details = f" {json.dumps(exc.details, ensure_ascii=False)}" if exc.details else ""
        raise failure(f"{exc}{details}") from exc


class JsonParam(click.ParamType[Any, Any]):
    """An option's value given as JSON (`--payload '{"n": 1}'`)."""

    name = "json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            self.fail(f"not JSON: {exc}", param, ctx)
