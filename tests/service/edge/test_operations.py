"""Operations routes need no auth (API.md, "Operations")."""

from __future__ import annotations

import re

import httpx
import pytest

from tests import worker_steps
from tests.support import TLS


def _anonymous(server) -> httpx.Client:
    return httpx.Client(verify=TLS, base_url=server.url, timeout=30)


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, or None when it is absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)", line)
        assert match, line
        if match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(4))
    return None


def test_healthz_answers_without_auth(server):
    with _anonymous(server) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.backends("sqlite", "postgres")  # readyz reads the store
def test_readyz_reports_no_projection_lag_after_writes(server, alice):
    for _ in range(5):
        job = alice.post("/api/v1/jobs", json={"type": "t"}).json()
    worker_steps.start(server, job["id"])
    alice.patch(f"/api/v1/jobs/{job['id']}", json={"starred": True})
    last = alice.get(f"/api/v1/jobs/{job['id']}").json()["last_event_id"]
    with _anonymous(server) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["projection_lag"] == 0
    assert body["last_event_id"] == last == 7


@pytest.mark.backends("sqlite", "postgres")  # readyz reads the store
def test_readyz_on_an_empty_store(server):
    with _anonymous(server) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["projection_lag"] == 0


def test_metrics_are_prometheus_text_by_route_template(server, alice):
    job = alice.post("/api/v1/jobs", json={"type": "t"}).json()
    for _ in range(3):
        assert alice.get(f"/api/v1/jobs/{job['id']}").status_code == 200
    alice.get("/api/v1/jobs/not-a-uuid")
    alice.get(f"/api/v1/jobs/{job['id']}/events")
    with _anonymous(server) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE jobtrail_http_requests_total counter" in text
    one_job = {"method": "GET", "route": "/api/v1/jobs/{job_id}"}
    assert _sample(text, "jobtrail_http_requests_total", **one_job, status="200") == 3
    assert _sample(text, "jobtrail_http_requests_total", **one_job, status="404") == 1
    created = _sample(
        text, "jobtrail_http_requests_total", method="POST", route="/api/v1/jobs", status="201"
    )
    assert created == 1
    events = {"method": "GET", "route": "/api/v1/jobs/{job_id}/events", "status": "200"}
    assert _sample(text, "jobtrail_http_requests_total", **events) == 1
    assert job["id"] not in text
    assert "not-a-uuid" not in text
    assert _sample(text, "jobtrail_events_recorded_total") == 1


def test_metrics_count_recorded_events(server, alice):
    job = alice.post("/api/v1/jobs", json={"type": "t"}).json()
    worker_steps.start(server, job["id"])
    worker_steps.log(server, job["id"], "x")
    alice.delete(f"/api/v1/jobs/{job['id']}")  # cancelled + deleted
    with _anonymous(server) as client:
        text = client.get("/metrics").text
    assert _sample(text, "jobtrail_events_recorded_total") == 5


def test_metrics_never_label_unmatched_paths_by_their_raw_path(server):
    with _anonymous(server) as client:
        assert client.get("/no/such/path/12345").status_code == 404
        text = client.get("/metrics").text
    assert "/no/such/path" not in text
    assert "12345" not in text


def test_openapi_document_is_3_1_without_auth(server):
    with _anonymous(server) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/jobs" in document["paths"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_operations_ignore_a_bad_token(server, path):
    with _anonymous(server) as client:
        response = client.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 200


def test_api_routes_still_need_auth(server):
    with _anonymous(server) as client:
        response = client.get("/api/v1/jobs")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
