"""The SSE form of the events routes over real HTTP: framing, backlog then live, resume, end."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Iterator

import pytest

from service.settings import ConfigError, Settings, Streams
from tests import sse_reader, support, worker_steps
from tests.support import LiveServer, make_settings

pytestmark = pytest.mark.backends("sqlite", "postgres")

SSE = {"Accept": "text/event-stream"}


@pytest.fixture
def quick(tmp_path, database_url) -> Iterator[LiveServer]:
    """A server whose heartbeat comes after 0.2 s of silence."""
    settings = make_settings(tmp_path, database_url=database_url)
    settings = dataclasses.replace(settings, sse=Streams(heartbeat_seconds=0.2))
    live = LiveServer(settings).start()
    try:
        yield live
    finally:
        live.stop()


_create = functools.partial(support.create, type="video.render")


def _path(job: dict) -> str:
    return f"/api/v1/jobs/{job['id']}/events"


def test_framing_headers_and_retry_first(quick):
    with quick.client() as alice:
        job = _create(alice)
        with alice.stream("GET", _path(job), headers=SSE) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-accel-buffering"] == "no"
            assert "content-encoding" not in response.headers
            blocks = sse_reader.messages(response)
            first = next(blocks)
            assert first.retry is not None and first.retry > 0 and not first.data
            created = next(blocks)
            event = created.json
            assert created.id == str(event["id"])
            assert created.event == "created" == event["type"]
            assert event["job_id"] == job["id"] and event["seq"] == 1
            heartbeat = next(blocks)  # nothing happens for 0.2 s
            assert heartbeat.comment is not None and not heartbeat.data


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        pytest.param(SSE, {}, id="accept"),
        pytest.param({}, {"stream": "true"}, id="stream-param"),
    ],
)
def test_backlog_then_live_on_both_routes(server, alice, headers, params):
    for route in ("job", "all"):
        job = _create(alice)
        worker_steps.start(server, job["id"])
        path = _path(job) if route == "job" else "/api/v1/events"
        query = params if route == "job" else {**params, "job_id": job["id"]}
        with alice.stream("GET", path, headers=headers, params=query) as response:
            stream = sse_reader.events(response)
            assert [next(stream).event for _ in range(2)] == ["created", "started"]
            worker_steps.progress(server, job["id"], percent=float(len(path)))
            live = next(stream)
            assert live.event == "progress"
            assert live.json["data"]["percent"] == float(len(path))


def test_stream_false_and_a_bad_stream_value(alice):
    job = _create(alice)
    assert alice.get(_path(job), params={"stream": "false"}).json()["items"]
    response = alice.get(_path(job), params={"stream": "yes"})
    assert response.status_code == 400
    assert "stream" in response.json()["error"]["details"]


def test_last_event_id_wins_over_after(server, alice):
    job = _create(alice)
    worker_steps.start(server, job["id"])
    worker_steps.progress(server, job["id"], percent=1.0)
    ids = [e["id"] for e in alice.get(_path(job)).json()["items"]]
    headers = {**SSE, "Last-Event-ID": str(ids[1])}
    with alice.stream("GET", _path(job), headers=headers, params={"after": 0}) as response:
        assert next(sse_reader.events(response)).id == str(ids[2])
    with alice.stream("GET", _path(job), headers=SSE, params={"after": ids[0]}) as response:
        assert next(sse_reader.events(response)).id == str(ids[1])
    bad = alice.get(_path(job), headers={**SSE, "Last-Event-ID": "x1"})
    assert bad.status_code == 400
    assert "Last-Event-ID" in bad.json()["error"]["details"]


def test_one_job_stream_ends_with_the_final_job_and_a_reconnect_gets_204(server, alice):
    job = _create(alice)
    worker_steps.start(server, job["id"])
    with alice.stream("GET", _path(job), headers=SSE) as response:
        stream = sse_reader.events(response)
        assert [next(stream).event for _ in range(2)] == ["created", "started"]
        worker_steps.progress(server, job["id"], percent=50.0)
        worker_steps.succeed(server, job["id"], result={"ok": True})
        rest = list(stream)  # the server closes the stream after `end`
    assert [m.event for m in rest] == ["progress", "succeeded", "end"]
    final = rest[-1].json
    assert final["id"] == job["id"] and final["status"] == "succeeded"
    assert final["last_event_id"] == int(rest[-2].id)
    again = alice.get(_path(job), headers={**SSE, "Last-Event-ID": rest[-2].id})
    assert again.status_code == 204
    # From the start, a finished job's stream replays everything, then ends.
    with alice.stream("GET", _path(job), headers=SSE) as response:
        replay = [m.event for m in sse_reader.events(response)]
    assert replay == ["created", "started", "progress", "succeeded", "end"]


def test_a_deleted_job_stream_ends_and_then_answers_404(server, alice, admin):
    job = _create(alice)
    with alice.stream("GET", _path(job), headers=SSE) as response:
        stream = sse_reader.events(response)
        assert next(stream).event == "created"
        assert alice.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
        rest = list(stream)
    assert [m.event for m in rest] == ["deleted", "end"]
    assert rest[-1].json["id"] == job["id"]
    assert alice.get(_path(job), headers=SSE).status_code == 404
    last = {**SSE, "Last-Event-ID": rest[-2].id}
    assert admin.get(_path(job), headers=last).status_code == 204


def test_the_global_stream_filters_by_job_and_type(server, alice):
    one, two = _create(alice), _create(alice)
    params = {"job_id": two["id"], "type": "progress"}
    with alice.stream("GET", "/api/v1/events", headers=SSE, params=params) as response:
        stream = sse_reader.events(response)
        worker_steps.start(server, one["id"])
        worker_steps.progress(server, one["id"], percent=1.0)
        worker_steps.start(server, two["id"])
        worker_steps.progress(server, two["id"], percent=2.0)
        got = next(stream)
    assert got.event == "progress" and got.json["job_id"] == two["id"]


def test_unknown_job_is_404_and_unknown_parameters_400(alice):
    missing = alice.get(f"/api/v1/jobs/{uuid.uuid4()}/events", headers=SSE)
    assert missing.status_code == 404
    assert alice.get("/api/v1/events", headers=SSE, params={"nope": 1}).status_code == 400


def test_head_answers_without_streaming(alice):
    job = _create(alice)
    response = alice.head(_path(job), headers=SSE, params={"stream": "true"})
    assert response.status_code == 200


def test_stream_settings_come_from_the_environment():
    env = {"JOBTRAIL_SSE_HEARTBEAT_SECONDS": "2.5", "JOBTRAIL_SSE_MAX_STREAMS_PER_OWNER": "7"}
    streams = Settings.from_env(env).sse
    assert (streams.heartbeat_seconds, streams.max_per_owner) == (2.5, 7)
    assert Settings.from_env({}).sse == Streams()
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError):
            Settings.from_env({"JOBTRAIL_SSE_HEARTBEAT_SECONDS": bad})
