"""The `jobtrail` CLI, as a real process with alice's token, on bob's job: exactly what it says
of a job that does not exist (the not-found exit, no data), and lists and events of hers only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests import support
from tests.service.tenancy import world_of

JOBTRAIL = str(Path(sys.executable).parent / "jobtrail")
# The commands that name a job: each with bob's job and with one that never existed.
BY_ID = {
    "get": ["get"],
    "events": ["events"],
    "watch": ["watch"],
}


def test_the_cli_finds_nothing_of_another_owner(shared_server):
    with world_of(shared_server) as world:
        hers = support.create(world.alice, name="hers")
        theirs = world.running(world.bob, name="bob's secret")["job"]
        unknown = str(uuid.uuid4())
        env = {
            **os.environ,
            "JOBTRAIL_URL": shared_server.url,
            "JOBTRAIL_TOKEN": shared_server.token(world.alice_sub),
        }
        commands = {
            (name, job_id): [*args, job_id]
            for name, args in BY_ID.items()
            for job_id in (theirs["id"], unknown)
        }
        commands[("list", "")] = ["list", "--json"]
        commands[("all-events", "")] = ["events"]
        running = {
            key: subprocess.Popen(
                [JOBTRAIL, *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for key, args in commands.items()
        }
        try:
            done = {
                key: (*process.communicate(timeout=60), process.returncode)
                for key, process in running.items()
            }
        finally:
            for process in running.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
    for name in BY_ID:
        out, err, code = done[(name, theirs["id"])]
        unknown_out, unknown_err, unknown_code = done[(name, unknown)]
        assert (code, out) == (unknown_code, unknown_out) == (code, ""), name
        assert code != 0, name
        assert "not_found" in err, (name, err)
        assert err.replace(theirs["id"], "<id>") == unknown_err.replace(unknown, "<id>"), name
    listed, _, code = done[("list", "")]
    assert code == 0
    assert [job["id"] for job in json.loads(listed)["items"]] == [hers["id"]]
    events, _, code = done[("all-events", "")]
    assert code == 0
    assert {json.loads(line)["job_id"] for line in events.splitlines()} == {hers["id"]}
