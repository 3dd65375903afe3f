"""`serve --demo`: the demo handlers run in-process, through the same worker protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings
from tests.support import LiveServer, claim, make_settings, wait_for
from tests.support import create_for_worker as create

pytestmark = pytest.mark.backends("sqlite", "postgres")


def demo_server(tmp_path: Path, database_url: str, demo: bool) -> LiveServer:
    settings: Settings = make_settings(
        tmp_path, database_url=database_url, demo=demo, retry_base_seconds=0.1
    )
    return LiveServer(settings).start()


def test_demo_jobs_move_when_asked(tmp_path: Path, database_url: str) -> None:
    server = demo_server(tmp_path, database_url, demo=True)
    try:
        with server.client("alice") as alice:
            count = create(alice, type="demo.count", payload={"to": 5, "delay": 0.01})
            fail = create(alice, type="demo.fail", payload={"delay": 0, "retry": False})
            batch = create(alice, type="demo.batch", payload={"items": 8, "delay": 0})

            def job(job_id: str) -> dict:
                return alice.get(f"/api/v1/jobs/{job_id}?include=logs").json()

            wait_for(lambda: job(count["id"])["status"] == "succeeded", timeout=20)
            wait_for(lambda: job(fail["id"])["status"] == "failed", timeout=20)
            wait_for(lambda: job(batch["id"])["status"] == "succeeded", timeout=20)
            counted = job(count["id"])
            assert counted["result"] == {"counted": 5} and counted["result_type"] == "count"
            assert counted["progress"]["percent"] == 100
            assert counted["logs"][-1]["message"] == "Done."
            assert job(fail["id"])["error"]["code"] == "demo_failure"
            assert job(batch["id"])["progress"]["failed"] == 1
    finally:
        server.stop()


def test_without_demo_no_job_is_claimed(tmp_path: Path, database_url: str) -> None:
    server = demo_server(tmp_path, database_url, demo=False)
    try:
        with server.client("alice") as alice:
            job = create(alice, type="demo.count", payload={"to": 1, "delay": 0})
            # No in-process worker: nobody long-polls for jobs, and the job stays for the
            # first worker that comes, this test's.
            claims = server.runtime.claims
            assert claims is not None and claims.waiting == 0
            assert alice.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "pending"
            with server.client("w", "worker") as worker:
                claimed = claim(worker, ["demo.count"])
            assert claimed is not None and claimed["job"]["id"] == job["id"]
    finally:
        server.stop()
