"""The `jobtrail` command: running the service (`serve`, `worker`, `token`, `projections`),
using it as a client (`create`, `list`, `get`, `watch`, `cancel`, `replay`, `delete`,
`events`), auditing its event store (`audit`) and moving it to PostgreSQL (`store copy`)."""

from __future__ import annotations

import click

from service.cli import audit, follow, jobs, serving, store


@click.group()
def main() -> None:
    """jobtrail: an event-sourced job service with live progress.

    The client commands take the server from --url or JOBTRAIL_URL and the token from --token
    or JOBTRAIL_TOKEN; they exit 1 when the request fails, 2 on a usage error.
    """


for command in (
    serving.serve,
    serving.worker,
    serving.token,
    serving.projections,
    jobs.create,
    jobs.list_,
    jobs.get,
    follow.watch,
    jobs.cancel,
    jobs.replay,
    jobs.delete,
    follow.events,
    audit.audit,
    store.store,
):
    main.add_command(command)
