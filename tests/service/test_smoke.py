from __future__ import annotations

import pytest

from tests import worker_steps

pytestmark = pytest.mark.backends("sqlite", "postgres")


def test_created_job_is_listed_and_fetched(server, alice):
    created = alice.post("/api/v1/jobs", json={"type": "video.render", "name": "Intro"})
    assert created.status_code == 201
    job = created.json()
    assert created.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert alice.get(f"/api/v1/jobs/{job['id']}").json() == job
    page = alice.get("/api/v1/jobs").json()
    assert [item["id"] for item in page["items"]] == [job["id"]]
    assert page["total"] == 1


def test_worker_steps_reach_the_read_model(server, alice):
    job = alice.post("/api/v1/jobs", json={"type": "t"}).json()
    worker_steps.start(server, job["id"])
    worker_steps.progress(server, job["id"], percent=50.0, stage="half")
    worker_steps.log(server, job["id"], "hello")
    worker_steps.succeed(server, job["id"], result={"ok": True}, result_type="report")
    got = alice.get(f"/api/v1/jobs/{job['id']}", params={"include": "logs"}).json()
    assert got["status"] == "succeeded"
    assert got["progress"]["percent"] == 50.0
    assert [log["message"] for log in got["logs"]] == ["hello"]
    assert got["version"] == 5
