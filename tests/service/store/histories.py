"""Job histories and what a client observes of them, for the durability tests: observed before
and after a restart or a catch-up, they must be equal."""

from __future__ import annotations

from typing import Any

from service.settings import Settings
from service.store import backends, verification
from tests import worker_steps
from tests.support import LiveServer
from tests.support import create as _create

READ_TABLES = ("jobs", "job_counts", "events", "idempotency_keys", "tracking")


def every_page(client, path: str, **params) -> list[dict]:
    items: list[dict] = []
    if path.endswith("/events"):
        after = 0
        while True:
            page = client.get(path, params={**params, "after": after, "limit": 1000}).json()
            items += page["items"]
            if not page["has_more"]:
                return items
            after = page["next_after"]
    query: dict[str, Any] = {**params, "limit": 100}
    while True:
        page = client.get(path, params=query).json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query = {**params, "limit": 100, "cursor": page["next_cursor"]}


def observe(server: LiveServer, job_ids: list[str]) -> dict[str, Any]:
    """Everything the API shows about these jobs, to alice and to an admin."""
    with server.client("alice") as alice, server.client("root", "admin") as admin:
        seen: dict[str, Any] = {
            "alice_list": every_page(alice, "/api/v1/jobs"),
            "alice_by_priority": every_page(alice, "/api/v1/jobs", sort="priority", order="asc"),
            "admin_list": every_page(admin, "/api/v1/jobs"),
            "alice_events": every_page(alice, "/api/v1/events"),
            "admin_events": every_page(admin, "/api/v1/events"),
            "alice_total": alice.get("/api/v1/jobs", params={"status": "pending"}).json()["total"],
        }
        for job_id in job_ids:
            got = alice.get(f"/api/v1/jobs/{job_id}", params={"include": "logs"})
            seen[job_id] = (got.status_code, got.json())
            seen[f"{job_id}/events"] = every_page(admin, f"/api/v1/jobs/{job_id}/events")
    return seen


def varied_history(server: LiveServer, client, tag: str, old: list[str]) -> list[str]:
    """Creates, patches, runs, cancels and deletes a mix of jobs; touches `old` ones too."""
    ids = []
    for i in range(8):
        headers = {"Idempotency-Key": f"{tag}-{i}"} if i % 2 else None
        job = _create(
            client,
            headers=headers,
            name=f"{tag} {i}",
            priority=("low", "normal", "high")[i % 3],
            category="c" if i % 2 else None,
            payload={"n": i, "list": [1, 2.5, None, "é"]},
            metadata={"tag": tag},
            max_attempts=2,
        )
        ids.append(job["id"])
    client.patch(f"/api/v1/jobs/{ids[0]}", json={"starred": True, "metadata": {"x": 1}})
    worker_steps.start(server, ids[1])
    worker_steps.progress(server, ids[1], percent=10.0, stage="one", total=3, completed=1)
    worker_steps.log(server, ids[1], "working", data={"k": [1, 2]})
    worker_steps.succeed(server, ids[1], result={"ok": True}, result_type="report")
    worker_steps.start(server, ids[2])
    worker_steps.fail(server, ids[2], message="try again", retry=True)
    assert client.post(f"/api/v1/jobs/{ids[3]}/cancel").status_code == 200
    worker_steps.start(server, ids[4])
    assert client.post(f"/api/v1/jobs/{ids[4]}/cancel").json()["cancel_requested"] is True
    assert client.delete(f"/api/v1/jobs/{ids[5]}").status_code == 204
    worker_steps.start(server, ids[6])
    assert client.delete(f"/api/v1/jobs/{ids[6]}").status_code == 204
    replay = client.post(f"/api/v1/jobs/{ids[1]}/replay")
    assert replay.status_code == 201
    ids.append(replay.json()["id"])
    for job_id in old:
        client.patch(f"/api/v1/jobs/{job_id}", json={"name": f"{tag} touched"})
        client.post(f"/api/v1/jobs/{job_id}/cancel", json={"reason": tag})
    if old:
        client.delete(f"/api/v1/jobs/{old[0]}")
    return ids


def verify_offline(settings: Settings) -> list[verification.Mismatch]:
    store = backends.open_store(settings)
    try:
        return verification.verify(store)
    finally:
        store.close()
