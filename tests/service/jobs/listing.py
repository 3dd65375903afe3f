"""Listing jobs over HTTP, for the list tests: a page, its ids, every page by cursor."""

from __future__ import annotations


def fetch(client, job_id):
    return client.get(f"/api/v1/jobs/{job_id}").json()


def listing(client, **params):
    response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(page):
    return [item["id"] for item in page["items"]]


def walk(client, limit, **params):
    """Every job, page by page through `next_cursor`; checks each page on the way."""
    seen = []
    page = listing(client, limit=limit, **params)
    while True:
        assert len(page["items"]) <= limit
        seen.extend(ids(page))
        if page["next_cursor"] is None:
            return seen
        assert len(page["items"]) == limit
        page = listing(client, limit=limit, cursor=page["next_cursor"], **params)


def assert_invalid(response, parameter):
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert parameter in error["details"]
