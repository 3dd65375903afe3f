"""The dashboard's routes over HTTP (no browser): what they serve, with which headers, and a
4xx in the API's error shape for anything else."""

from __future__ import annotations

import uuid

import httpx
import pytest

from service.dashboard import pages
from tests.support import TLS


@pytest.fixture(scope="module")
def http(shared_server):
    with httpx.Client(verify=TLS, base_url=shared_server.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("path", ["/", f"/jobs/{uuid.uuid4()}", "/?token=x&status=running"])
def test_the_pages_are_the_dashboard_under_a_strict_policy(http, path):
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == pages.CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in pages.CONTENT_SECURITY_POLICY
    assert response.headers["referrer-policy"] == "no-referrer"
    assert '<script type="module" src="/static/app.js">' in response.text


def test_every_file_the_page_names_is_served_and_nothing_comes_from_elsewhere(http):
    index = http.get("/").text
    for name in ("app.js", "app.css", "icon.svg"):
        assert f"/static/{name}" in index
    for name, media in (("app.js", "text/javascript"), ("jobs.js", "text/javascript"),
                        ("app.css", "text/css"), ("icon.svg", "image/svg+xml")):  # fmt: skip
        response = http.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media)
        text = response.text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name only
        assert "://" not in text


def test_an_unchanged_file_answers_304(http):
    etag = http.get("/static/app.js").headers["etag"]
    again = http.get("/static/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/index.html",
        "/static/..%2Fpages.py",
        "/jobs/not-a-uuid",
        "/static/",
        "/jobs/",
    ],
)
def test_anything_else_is_a_404_in_the_error_shape(http, path):
    response = http.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_pages_take_only_get_and_head(http):
    assert http.head("/").status_code == 200
    response = http.post("/", json={})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
