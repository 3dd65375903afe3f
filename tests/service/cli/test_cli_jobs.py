"""The client commands in-process (click's runner) against a real server: every command, its
`--json` output (the API's JSON), and one-line errors with their exit statuses."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from service.cli import main
from tests.service.sdk.test_client import refusing_address
from tests.support import call, claim, create

pytestmark = pytest.mark.backends("sqlite", "postgres")


@pytest.fixture(scope="module")
def env(shared_server):
    return {"JOBTRAIL_URL": shared_server.url, "JOBTRAIL_TOKEN": shared_server.token("alice")}


def run(env, *args):
    return CliRunner().invoke(main, list(args), env=env)


def ok(env, *args):
    result = run(env, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_create_prints_the_id_and_get_shows_the_job(env):
    job_id = ok(env, "create", "k.create", "--payload", '{"n": 1}', "--name", "Nice one").strip()
    shown = ok(env, "get", job_id)
    assert job_id in shown and "Nice one" in shown and "pending" in shown
    job = json.loads(ok(env, "get", job_id, "--json"))
    assert (job["id"], job["payload"], job["name"]) == (job_id, {"n": 1}, "Nice one")
    created = json.loads(
        ok(
            env,
            "create",
            "k.create",
            "--priority",
            "high",
            "--metadata",
            '{"a": 1}',
            "--max-attempts",
            "2",
            "--category",
            "c",
            "--json",
        )
    )
    assert (created["priority"], created["metadata"], created["max_attempts"]) == (
        "high",
        {"a": 1},
        2,
    )


def test_get_as_of_and_logs(shared_server, env):
    with shared_server.client("alice") as alice, shared_server.client("w", "worker") as worker:
        job = create(alice, type="k.logs")
        claimed = claim(worker, ["k.logs"])
        call(worker, claimed, "logs", {"message": "first line", "level": "warning"})
        call(worker, claimed, "succeed", {"result": 7})
    assert json.loads(ok(env, "get", job["id"], "--as-of", "1", "--json"))["status"] == "pending"
    with_logs = json.loads(ok(env, "get", job["id"], "--logs", "--json"))
    assert [e["message"] for e in with_logs["logs"]] == ["first line"]
    shown = ok(env, "get", job["id"], "--logs")
    assert "first line" in shown and "warning" in shown and "succeeded" in shown


def test_list_takes_every_filter_and_pages(env):
    ids = [ok(env, "create", "k.list", "--priority", p).strip() for p in ("low", "high", "high")]
    page = json.loads(ok(env, "list", "--type", "k.list", "--priority", "high", "--json"))
    assert {j["id"] for j in page["items"]} == set(ids[1:]) and page["total"] == 2
    filters = ["--status", "pending", "--category", "none,other", "--owner", "alice",
               "--parent-id", ids[0], "--result-type", "r", "--finished", "--starred",
               "--created-from", "0", "--created-to", "1", "--sort", "priority",
               "--order", "asc", "--offset", "0"]  # fmt: skip
    assert json.loads(ok(env, "list", "--type", "k.list", *filters, "--json"))["items"] == []
    first = json.loads(ok(env, "list", "--type", "k.list", "--limit", "2", "--json"))
    rest = json.loads(
        ok(env, "list", "--type", "k.list", "--cursor", first["next_cursor"], "--json")
    )
    assert [j["id"] for j in first["items"] + rest["items"]] == ids[::-1]
    table = ok(env, "list", "--type", "k.list", "--unfinished", "--not-starred", "--limit", "2")
    assert ids[2] in table and ids[1] in table and "--cursor" in table
    every = ok(env, "list", "--type", "k.list", "--all", "--json").splitlines()
    assert [json.loads(line)["id"] for line in every] == ids[::-1]
    assert all(i in ok(env, "list", "--type", "k.list", "--all") for i in ids)


def test_cancel_replay_delete(env):
    job_id = ok(env, "create", "k.more").strip()
    assert ok(env, "cancel", job_id, "--reason", "no") == f"{job_id} cancelled\n"
    copy = ok(env, "replay", job_id).strip()
    assert json.loads(ok(env, "get", copy, "--json"))["replayed_from"] == job_id
    assert json.loads(ok(env, "cancel", copy, "--json"))["status"] == "cancelled"
    assert json.loads(ok(env, "replay", copy, "--json"))["replayed_from"] == copy
    assert ok(env, "delete", copy) == f"{copy} deleted\n"
    gone = run(env, "get", copy)
    assert gone.exit_code == 1 and gone.stderr == "Error: 404 not_found: Job not found.\n"


def test_events_as_ndjson_one_job_or_all(shared_server, env):
    with shared_server.client("alice") as alice:
        one = create(alice, type="k.events")
        two = create(alice, type="k.events")
        alice.post(f"/api/v1/jobs/{one['id']}/cancel")
    lines = [json.loads(line) for line in ok(env, "events", one["id"]).splitlines()]
    assert [(e["seq"], e["type"]) for e in lines] == [(1, "created"), (2, "cancelled")]
    after = ok(env, "events", one["id"], "--after", str(lines[0]["id"]))
    assert [json.loads(line) for line in after.splitlines()] == lines[1:]
    followed = ok(env, "events", one["id"], "--follow")  # the job is over: the stream ends
    assert [json.loads(line) for line in followed.splitlines()] == lines
    everything = [
        json.loads(line)
        for line in ok(env, "events", "--after", str(two["last_event_id"] - 1)).splitlines()
    ]
    assert [e["id"] for e in everything] == sorted(e["id"] for e in everything)
    assert {e["job_id"] for e in everything} == {one["id"], two["id"]}
    cancelled = ok(env, "events", "--type", "cancelled", "--after", str(two["last_event_id"]))
    assert [json.loads(line)["job_id"] for line in cancelled.splitlines()] == [one["id"]]
    assert run(env, "events", one["id"], "--type", "log").exit_code == 2


def test_errors_are_one_line_with_a_non_zero_exit(shared_server, env):
    with refusing_address() as url:
        down = run({**env, "JOBTRAIL_URL": url}, "list")
    assert down.exit_code == 1 and down.stderr.count("\n") == 1
    assert down.stderr.startswith(f"Error: cannot reach {url}: ")
    refused = run({**env, "JOBTRAIL_TOKEN": "nope"}, "list")
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("Error: 401 unauthorized: ")
    bad = run(env, "create", "Bad Type")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: 400 invalid_request: ")
    assert run(env, "get", "00000000-0000-0000-0000-000000000000").exit_code == 1
    assert run({"JOBTRAIL_URL": shared_server.url}, "list").exit_code == 2  # no token
    assert run(env, "list", "--limit", "101").exit_code == 2
    assert run(env, "create", "k.x", "--payload", "{nope").exit_code == 2
    assert run(env, "watch").exit_code == 2
