"""The worker SDK end to end, over real HTTP: in-process, and as `jobtrail worker` processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.sdk.client import AsyncClient, LeaseLostError
from service.sdk.worker import Worker
from service.settings import Settings
from tests.service.sdk import handlers as sdk_handlers
from tests.support import LiveServer, make_settings, wait_for
from tests.support import create_for_worker as create

pytestmark = [pytest.mark.backends("sqlite", "postgres"), pytest.mark.anyio]
JOBTRAIL = str(Path(sys.executable).parent / "jobtrail")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=database_url,
        retry_base_seconds=0.2,
        retry_cap_seconds=0.5,
        lease_reaper_interval=0.05,
    )


def status(client: httpx.Client, job_id: str) -> str:
    return str(client.get(f"/api/v1/jobs/{job_id}").json()["status"])


def worker_client(server: LiveServer) -> AsyncClient:
    return AsyncClient(server.url, server.token("sdk", "worker"))


async def settled(owner: httpx.AsyncClient, job_ids: list[str], *states: str) -> None:
    """Waits (at most 20 s) until every job is in one of `states`."""
    for _ in range(1000):
        jobs = [(await owner.get(f"/api/v1/jobs/{i}")).json() for i in job_ids]
        if all(job["status"] in states for job in jobs):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the jobs did not reach {states}")


async def run_until(worker: Worker, owner: httpx.AsyncClient, job_ids: list[str]) -> None:
    task = asyncio.create_task(worker.run())
    try:
        await settled(owner, job_ids, "succeeded", "failed", "cancelled")
    finally:
        worker.stop()
        await asyncio.wait_for(task, 20)


async def test_handlers_results_and_failures(server: LiveServer, alice: httpx.Client) -> None:
    echo = create(alice, type="sdk.echo", payload={"x": [1, 2]})
    boom = create(alice, type="sdk.boom", max_attempts=1)
    refuse = create(alice, type="sdk.refuse", max_attempts=5)
    async with worker_client(server) as client, server.async_client() as owner:
        worker = Worker(client, sdk_handlers.HANDLERS, concurrency=3, wait_seconds=1)
        await run_until(worker, owner, [echo["id"], boom["id"], refuse["id"]])
        done = (await owner.get(f"/api/v1/jobs/{echo['id']}")).json()
        failed = (await owner.get(f"/api/v1/jobs/{boom['id']}")).json()
        refused = (await owner.get(f"/api/v1/jobs/{refuse['id']}")).json()
    assert done["status"] == "succeeded" and done["result"] == {"x": [1, 2]}
    assert failed["status"] == "failed"
    error = {"message": "the payload was bad", "code": "ValueError", "details": None}
    assert failed["error"] == error
    assert refused["status"] == "failed" and refused["attempt"] == 1


async def test_cancel_reaches_the_handler_at_its_checkpoint(
    server: LiveServer, alice: httpx.Client
) -> None:
    job = create(alice, type="sdk.slow", payload={"seconds": 30})
    async with worker_client(server) as client, server.async_client() as owner:
        worker = Worker(client, sdk_handlers.HANDLERS, concurrency=1, wait_seconds=1)
        task = asyncio.create_task(worker.run())
        await settled(owner, [job["id"]], "running")
        await owner.post(f"/api/v1/jobs/{job['id']}/cancel")
        await settled(owner, [job["id"]], "cancelled")
        worker.stop()
        await asyncio.wait_for(task, 20)


# a process's or the SDK's behaviour: no store path the others do not take
@pytest.mark.backends("sqlite")
async def test_concurrency_runs_jobs_side_by_side(server: LiveServer, alice: httpx.Client) -> None:
    jobs = [create(alice, type="sdk.slow", payload={"seconds": 1})["id"] for _ in range(4)]
    async with worker_client(server) as client, server.async_client() as owner:
        worker = Worker(client, sdk_handlers.HANDLERS, concurrency=4, wait_seconds=1)
        await run_until(worker, owner, jobs)
        done = [(await owner.get(f"/api/v1/jobs/{i}")).json() for i in jobs]
    assert {job["status"] for job in done} == {"succeeded"}
    # All four were running at once: every one started before any finished.
    assert max(job["started_at"] for job in done) < min(job["finished_at"] for job in done)


async def test_stop_gives_back_jobs_that_outlive_the_grace_period(
    server: LiveServer, alice: httpx.Client
) -> None:
    job = create(alice, type="sdk.slow", payload={"seconds": 60}, max_attempts=2)
    async with worker_client(server) as client, server.async_client() as owner:
        worker = Worker(
            client, sdk_handlers.HANDLERS, concurrency=1, wait_seconds=1, grace_seconds=0.3
        )
        task = asyncio.create_task(worker.run())
        await settled(owner, [job["id"]], "running")
        worker.stop()
        await asyncio.wait_for(task, 10)
        given_back = (await owner.get(f"/api/v1/jobs/{job['id']}")).json()
    assert given_back["status"] == "pending"
    assert given_back["error"]["code"] == "worker_stopped"


async def test_client_maps_a_lost_lease_to_its_error(
    server: LiveServer, alice: httpx.Client
) -> None:
    job = create(alice, type="sdk.echo")
    async with worker_client(server) as client:
        with pytest.raises(LeaseLostError):
            await client.heartbeat(job["id"], "not-a-lease")


def spawn_worker(server: LiveServer, *extra: str) -> subprocess.Popen[bytes]:
    command = [
        JOBTRAIL, "worker", "--handlers", "tests.service.sdk.handlers:HANDLERS",
        "--url", server.url, "--token", server.token("proc", "worker"), *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


# a process's or the SDK's behaviour: no store path the others do not take
@pytest.mark.backends("sqlite")
def progress_reported(client: httpx.Client, job_id: str) -> bool:
    events = client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
    return any(event["type"] == "progress" for event in events)


def test_sigterm_lets_the_running_job_finish(server: LiveServer, alice: httpx.Client) -> None:
    job = create(alice, type="sdk.slow", payload={"seconds": 1.5})
    process = spawn_worker(server, "--grace", "20")
    try:
        # Its handler has reported progress: the worker holds the claim (not only the server).
        wait_for(lambda: progress_reported(alice, job["id"]), timeout=20)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert status(alice, job["id"]) == "succeeded"
        later = create(alice, type="sdk.echo")  # a stopped worker claims nothing more
        assert status(alice, later["id"]) == "pending"
    finally:
        stop_process(process)


# a process's or the SDK's behaviour: no store path the others do not take
@pytest.mark.backends("sqlite")
def test_a_killed_worker_s_job_is_retried_by_another_and_finishes_once(
    server: LiveServer, alice: httpx.Client
) -> None:
    job = create(alice, type="sdk.hang", max_attempts=3)
    doomed = spawn_worker(server, "--lease", "1")
    try:
        wait_for(lambda: status(alice, job["id"]) == "running", timeout=20)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        stop_process(doomed)
    rescuer = spawn_worker(server, "--lease", "5")
    try:
        wait_for(lambda: status(alice, job["id"]) == "succeeded", timeout=30)
    finally:
        rescuer.send_signal(signal.SIGTERM)
        rescuer.wait(timeout=20)
        stop_process(rescuer)
    events = alice.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
    kinds = [e["type"] for e in events]
    assert kinds.count("started") == 2 and kinds.count("succeeded") == 1
    assert kinds.count("retry_scheduled") == 1
    final = alice.get(f"/api/v1/jobs/{job['id']}").json()
    assert final["attempt"] == 2 and final["result"] == "done"


# a process's or the SDK's behaviour: no store path the others do not take
@pytest.mark.backends("sqlite")
async def test_a_handler_that_ignores_a_cancel_is_stopped_after_the_grace_period(
    server: LiveServer, alice: httpx.Client
) -> None:
    job = create(alice, type="sdk.deaf")
    async with worker_client(server) as client, server.async_client() as owner:
        worker = Worker(
            client,
            sdk_handlers.HANDLERS,
            concurrency=1,
            wait_seconds=1,
            lease_seconds=1,
            grace_seconds=0.5,
        )
        task = asyncio.create_task(worker.run())
        await settled(owner, [job["id"]], "running")
        await owner.post(f"/api/v1/jobs/{job['id']}/cancel")
        await settled(owner, [job["id"]], "cancelled")
        events = (await owner.get(f"/api/v1/jobs/{job['id']}/events")).json()["items"]
        worker.stop()
        await asyncio.wait_for(task, 10)
    # Acknowledged by the SDK, not lapsed: the lease never expired.
    assert [e["type"] for e in events][-2:] == ["cancel_requested", "cancelled"]
    assert events[-1]["data"]["reason"] is None
