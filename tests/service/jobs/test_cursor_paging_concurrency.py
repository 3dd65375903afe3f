"""Paging by cursor never skips or repeats a job while new jobs are being created (API.md,
"Jobs"); offset pages and totals agree with each other on a quiet store."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.support import LiveServer, wait_for

pytestmark = pytest.mark.backends("sqlite", "postgres")

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2}
SEEDED = 300
LIMIT = 7


def _seed(server, count: int, threads: int = 6) -> list[dict]:
    """Creates `count` jobs for alice from several threads; returns their documents."""
    created: list[dict] = []
    lock = threading.Lock()

    def create(part: int) -> None:
        with server.client("alice") as client:
            for i in range(part, count, threads):
                body = {"type": f"seed.t{i % 4}", "priority": ("low", "normal", "high")[i % 3]}
                response = client.post("/api/v1/jobs", json=body)
                assert response.status_code == 201, response.text
                with lock:
                    created.append(response.json())

    workers = [threading.Thread(target=create, args=(part,)) for part in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(created) == count
    return created


class _Creator:
    """Creates alice's jobs in a thread until told to stop or `limit` are made."""

    def __init__(self, server, limit: int) -> None:
        self.server = server
        self.limit = limit
        self.created: list[str] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with self.server.client("alice") as client:
            i = 0
            while not self.stop.is_set() and len(self.created) < self.limit:
                body = {"type": "new.job", "priority": ("high", "low", "normal")[i % 3]}
                response = client.post("/api/v1/jobs", json=body)
                if response.status_code != 201:
                    self.failures.append(response.text)
                    return
                self.created.append(response.json()["id"])
                i += 1

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def wait_for_more(self) -> None:
        """Returns once another job was created (or the creator has finished)."""
        seen = len(self.created)
        wait_for(lambda: len(self.created) > seen or self.done)

    def __enter__(self) -> _Creator:
        self.thread.start()
        wait_for(lambda: self.created or self.done)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        assert self.failures == []


def _page_by_cursor(client, creator: _Creator | None, **params) -> list[dict]:
    """Every page of the list by cursor; between pages, waits until a new job was created."""
    items: list[dict] = []
    query = {"limit": LIMIT, **params}
    pages = 0
    while True:
        response = client.get("/api/v1/jobs", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= LIMIT
        items += page["items"]
        pages += 1
        assert pages < 500, "paging does not end"
        if page["next_cursor"] is None:
            return items
        if creator is not None:
            creator.wait_for_more()
        query = {"limit": LIMIT, **params, "cursor": page["next_cursor"]}


def _sort_key(job: dict, sort: str) -> tuple:
    # For a job that was never changed, last_event_id is its `created` event: creation order.
    created = (job["created_at"], job["last_event_id"])
    if sort == "priority":
        return (PRIORITY_RANK[job["priority"]], *created)
    return created


def _expected_order(seeded: list[dict], sort: str, order: str) -> list[str]:
    ordered = sorted(seeded, key=lambda job: _sort_key(job, sort), reverse=order == "desc")
    return [job["id"] for job in ordered]


@pytest.fixture
def seeded(server) -> list[dict]:
    return _seed(server, SEEDED)


@pytest.fixture(scope="module")
def quiet(module_settings) -> Iterator[tuple[LiveServer, list[dict]]]:
    """One server with SEEDED jobs that no test changes: for the read-only tests."""
    live = LiveServer(module_settings("quiet")).start()
    try:
        yield live, _seed(live, SEEDED)
    finally:
        live.stop()


@pytest.fixture
def quiet_alice(quiet) -> Iterator[httpx.Client]:
    with quiet[0].client("alice") as client:
        yield client


# On PostgreSQL one sort order: the others build the same keyset query, and cost as much again.
SQLITE_ONLY = pytest.mark.backends("sqlite")


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        pytest.param("created_at", "desc", id="created_at-desc"),
        pytest.param("created_at", "asc", id="created_at-asc", marks=SQLITE_ONLY),
        pytest.param("priority", "desc", id="priority-desc", marks=SQLITE_ONLY),
        pytest.param("priority", "asc", id="priority-asc", marks=SQLITE_ONLY),
    ],
)
def test_cursor_paging_neither_skips_nor_repeats_during_concurrent_creation(
    server, alice, seeded, sort, order
):
    with _Creator(server, limit=150) as creator:
        items = _page_by_cursor(alice, creator, sort=sort, order=order)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "a job was listed twice"
    seeded_ids = {job["id"] for job in seeded}
    assert seeded_ids <= set(ids), f"{len(seeded_ids - set(ids))} seeded jobs were skipped"
    assert set(ids) <= seeded_ids | set(creator.created)
    in_seeded_order = [job_id for job_id in ids if job_id in seeded_ids]
    assert in_seeded_order == _expected_order(seeded, sort, order)
    assert len(creator.created) > 0


@pytest.mark.backends("sqlite")  # the descending twin runs on both
def test_ascending_cursor_pages_show_new_jobs_only_at_the_end(server, alice, seeded):
    with _Creator(server, limit=150) as creator:
        items = _page_by_cursor(alice, creator, sort="created_at", order="asc")
    ids = [item["id"] for item in items]
    assert ids[:SEEDED] == _expected_order(seeded, "created_at", "asc")
    new = ids[SEEDED:]
    assert len(new) == len(set(new))
    assert set(new) <= set(creator.created)
    # The new jobs that were listed are listed in creation order, and they are the oldest ones.
    assert new == creator.created[: len(new)]


def test_descending_cursor_pages_never_show_jobs_created_after_the_first_page(
    server, alice, seeded
):
    first = alice.get("/api/v1/jobs", params={"limit": LIMIT}).json()
    with _Creator(server, limit=100) as creator:
        items = list(first["items"])
        query = {"limit": LIMIT, "cursor": first["next_cursor"]}
        while True:
            creator.wait_for_more()
            page = alice.get("/api/v1/jobs", params=query).json()
            items += page["items"]
            if page["next_cursor"] is None:
                break
            query["cursor"] = page["next_cursor"]
    ids = [item["id"] for item in items]
    assert ids == _expected_order(seeded, "created_at", "desc")
    assert not set(ids) & set(creator.created)


def test_cursor_paging_with_a_filter_during_concurrent_creation(server, alice, seeded):
    with _Creator(server, limit=120) as creator:
        items = _page_by_cursor(alice, creator, priority="high,low", sort="priority")
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    expected = [job for job in seeded if job["priority"] in ("high", "low")]
    in_seeded_order = [job_id for job_id in ids if job_id in {job["id"] for job in expected}]
    assert in_seeded_order == _expected_order(expected, "priority", "desc")
    assert all(item["priority"] in ("high", "low") for item in items)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="all"),
        pytest.param({"sort": "priority", "order": "asc"}, id="priority-asc"),
        pytest.param({"priority": "high"}, id="high"),
        pytest.param({"type": "seed.t1,seed.t2", "order": "asc"}, id="types"),
        pytest.param({"status": "pending", "finished": "false"}, id="pending"),
    ],
)
def test_offset_pages_and_totals_agree_on_a_quiet_store(quiet_alice, params):
    alice = quiet_alice
    cursor_ids = [item["id"] for item in _page_by_cursor(alice, None, **params)]
    offset_ids: list[str] = []
    totals = set()
    offset = 0
    while True:
        page = alice.get("/api/v1/jobs", params={**params, "limit": LIMIT, "offset": offset})
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["offset"] == offset
        assert body["limit"] == LIMIT
        totals.add(body["total"])
        if not body["items"]:
            break
        offset_ids += [item["id"] for item in body["items"]]
        offset += LIMIT
    assert totals == {len(offset_ids)}
    assert len(offset_ids) == len(set(offset_ids))
    assert offset_ids == cursor_ids
    assert len(offset_ids) > 0


def test_cursor_pages_report_the_same_total_as_offset_pages(quiet_alice):
    alice = quiet_alice
    first = alice.get("/api/v1/jobs", params={"limit": LIMIT}).json()
    second = alice.get("/api/v1/jobs", params={"limit": LIMIT, "cursor": first["next_cursor"]})
    assert second.status_code == 200
    assert first["total"] == second.json()["total"] == SEEDED
    assert first["offset"] == 0
    assert second.json()["offset"] is None


def test_last_offset_page_has_no_next_cursor(quiet_alice):
    alice = quiet_alice
    last = alice.get("/api/v1/jobs", params={"limit": LIMIT, "offset": SEEDED - 3}).json()
    assert len(last["items"]) == 3
    assert last["next_cursor"] is None
    beyond = alice.get("/api/v1/jobs", params={"limit": LIMIT, "offset": SEEDED + 10}).json()
    assert beyond["items"] == []
    assert beyond["total"] == SEEDED


@pytest.mark.backends("sqlite")  # rejected before the store is read
def test_offset_beyond_64_bits_is_400_not_500(quiet_alice):
    response = quiet_alice.get("/api/v1/jobs", params={"offset": str(2**63)})
    assert response.status_code == 400
    assert "offset" in response.json()["error"]["details"]


def test_largest_64_bit_offset_is_an_empty_page(quiet_alice):
    response = quiet_alice.get("/api/v1/jobs", params={"offset": str(2**63 - 1)})
    assert response.status_code == 200
    assert response.json()["items"] == []
    assert response.json()["total"] == SEEDED
