"""`jobtrail` as a real process against a real server: `watch` shows the job live to its end
and exits with its outcome; `--json` parses; errors are one line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.service.sdk.test_client import refusing_address
from tests.support import LiveServer, call, claim, create

JOBTRAIL = str(Path(sys.executable).parent / "jobtrail")


def jobtrail(server, *args, url=None):
    env = {
        **os.environ,
        "JOBTRAIL_URL": url or server.url,
        "JOBTRAIL_TOKEN": server.token("alice"),
    }
    return subprocess.Popen(
        [JOBTRAIL, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process):
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


def test_watch_shows_the_job_live_and_exits_with_its_outcome(shared_server):
    server = shared_server
    with server.client("alice") as alice, server.client("w", "worker") as worker:
        jobs = {name: create(alice, type=f"p.{name}") for name in ("ok", "bad", "stop")}
        watching = {name: jobtrail(server, "watch", job["id"]) for name, job in jobs.items()}
        for name, job in jobs.items():  # printed once it has read the job, still pending
            assert watching[name].stdout.readline().startswith(job["id"])
        ok = claim(worker, ["p.ok"])
        call(worker, ok, "progress", {"percent": 50, "stage": "rendering", "message": "half"})
        call(worker, ok, "logs", {"message": "a log line", "level": "warning"})
        call(worker, ok, "succeed", {"result": {"frames": 2}})
        bad = claim(worker, ["p.bad"])
        call(worker, bad, "fail", {"error": {"message": "it broke", "code": "broke"}})
        assert alice.post(f"/api/v1/jobs/{jobs['stop']['id']}/cancel").status_code == 200
        ended = {name: finish(process) for name, process in watching.items()}
    code, out, err = ended["ok"]
    assert code == 0, err
    assert "rendering" in out and "half" in out and "a log line" in out and "warning" in out
    assert out.splitlines()[-1] == 'succeeded  result: {"frames": 2}'
    code, out, err = ended["bad"]
    assert code == 1, err
    assert out.splitlines()[-1] == "failed  it broke (broke)"
    code, out, err = ended["stop"]
    assert code == 2, err
    assert out.splitlines()[-1] == "cancelled"


def test_json_output_parses_and_errors_are_one_line(shared_server):
    with shared_server.client("alice") as alice:
        job = create(alice, type="k.json", name="as json")
    with refusing_address() as down:
        running = {
            "list": jobtrail(shared_server, "list", "--type", "k.json", "--json"),
            "get": jobtrail(shared_server, "get", job["id"], "--json"),
            "events": jobtrail(shared_server, "events", job["id"]),
            "missing": jobtrail(shared_server, "get", "00000000-0000-0000-0000-000000000000"),
            "down": jobtrail(shared_server, "list", url=down),
            "watch-down": jobtrail(shared_server, "watch", job["id"], url=down),
        }
        done = {name: finish(process) for name, process in running.items()}
    assert [j["id"] for j in json.loads(done["list"][1])["items"]] == [job["id"]]
    assert json.loads(done["get"][1])["name"] == "as json"
    assert json.loads(done["events"][1])["type"] == "created"
    assert (
        done["missing"][0] == 1 and done["missing"][2] == "Error: 404 not_found: Job not found.\n"
    )
    for name, status in (("down", 1), ("watch-down", 3)):
        code, _, err = done[name]
        assert code == status and err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith("Error: cannot reach http://127.0.0.1:")


def test_watch_resumes_after_the_server_restarts(settings):
    server = LiveServer(settings).start()
    try:
        with server.client("alice") as alice, server.client("w", "worker") as worker:
            job = create(alice, type="p.restart")
            watching = jobtrail(server, "watch", job["id"])
            assert watching.stdout.readline().startswith(job["id"])
            claimed = claim(worker, ["p.restart"])
            call(worker, claimed, "logs", {"message": "before the restart"})
            while "before the restart" not in watching.stdout.readline():
                pass  # the line came over the live stream: it is open
            server.restart(same_port=True)
            call(worker, claimed, "logs", {"message": "after the restart"})
            call(worker, claimed, "succeed", {"result": 1})
            code, out, err = finish(watching)
    finally:
        server.stop()
    assert code == 0, err
    assert out.count("after the restart") == 1 and "before the restart" not in out
    assert out.splitlines()[-1] == "succeeded  result: 1"
