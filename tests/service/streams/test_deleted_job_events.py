"""Issue 7, over real HTTP, the sixth defect: the events page of a deleted job never said it
was finished, so a poller never stopped. Its page and its stream now agree that it is."""

from __future__ import annotations

import pytest

from tests import sse_reader
from tests.service.edge.hostile import SSE, assert_error, open_stream, running_job
from tests.support import create

pytestmark = pytest.mark.backends("sqlite", "postgres")

# One server for the module: each test looks only at its own jobs.


@pytest.fixture(scope="module")
def admin(shared_server):
    with shared_server.client("root", "admin") as client:
        yield client


@pytest.fixture(scope="module")
def alice(shared_server):
    with shared_server.client("alice") as client:
        yield client


@pytest.fixture(scope="module")
def worker(shared_server):
    with shared_server.client("w-1", "worker") as client:
        yield client


def test_events_page_of_a_deleted_pending_job_is_finished(alice, admin):
    job = create(alice)
    assert alice.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    path = f"/api/v1/jobs/{job['id']}/events"

    page = admin.get(path).json()
    after = admin.get(path, params={"after": page["next_after"]}).json()

    assert_error(alice.get(path), 404, "not_found")
    assert page["items"][-1]["type"] == "deleted"
    assert (page["has_more"], page["finished"]) == (False, True)
    assert (after["items"], after["has_more"], after["finished"]) == ([], False, True)


@pytest.mark.parametrize("status", ["pending", "running"])
def test_a_poller_of_a_deleted_job_with_many_events_stops_at_its_last_page(
    alice, admin, worker, status
):
    if status == "running":
        job_id = running_job(alice, worker)["job"]["id"]
    else:
        job_id = create(alice)["id"]
    for n in range(5):
        patched = alice.patch(f"/api/v1/jobs/{job_id}", json={"metadata": {"n": n}})
        assert patched.status_code == 200
    assert alice.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    path = f"/api/v1/jobs/{job_id}/events"
    everything = admin.get(path).json()["items"]

    pages, after = [], 0
    for _ in range(len(everything) + 1):  # a poller that is told it is finished, stops
        page = admin.get(path, params={"after": after, "limit": 2}).json()
        pages.append(page)
        after = page["next_after"]
        if page["finished"]:
            break

    assert len(everything) > 2
    assert [p["finished"] for p in pages] == [False] * (len(pages) - 1) + [True]
    assert [p["has_more"] for p in pages] == [True] * (len(pages) - 1) + [False]
    assert [e for p in pages for e in p["items"]] == everything
    assert everything[-1]["type"] == "deleted"


def test_the_stream_and_the_page_of_a_deleted_job_agree_it_is_finished(alice, admin):
    job = create(alice)
    assert alice.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    path = f"/api/v1/jobs/{job['id']}/events"
    page = admin.get(path).json()

    with admin.stream("GET", path, headers=SSE, timeout=5) as response:
        assert response.status_code == 200
        streamed = list(sse_reader.events(response))  # the server closes it after `end`
    reconnect = open_stream(admin, path, {"Last-Event-ID": str(streamed[-2].id)})

    assert page["finished"] is True
    assert [m.event for m in streamed] == [e["type"] for e in page["items"]] + ["end"]
    assert [int(str(m.id)) for m in streamed[:-1]] == [e["id"] for e in page["items"]]
    assert streamed[-1].json["id"] == job["id"]
    assert reconnect.status_code == 204
