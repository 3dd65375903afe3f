"""Whatever sequence of commands clients and workers send, the read models equal the fold of the
events, and every job document the API serves is the one its event stream folds to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain import errors as domain_errors
from domain.job import LOG_LEVELS
from projections import documents
from service.store import verification
from tests import worker_steps
from tests.support import LiveServer

JOB_SLOTS = 6

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)  # what the API accepts
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)


pytestmark = pytest.mark.backends("sqlite", "postgres")
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


# A text field (not a JSON value) refuses the NUL character (API.md, "Values"): 400 on both
# backends. JSON values keep it.
def texts(**sizes: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_characters="\x00"), **sizes)


short_text = texts(min_size=1, max_size=30)

job_bodies = st.fixed_dictionaries(
    {"type": st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True)},
    optional={
        "name": short_text | st.none(),
        "category": st.sampled_from(["a", "b", "ünï"]) | st.none(),
        "priority": st.sampled_from(["low", "normal", "high"]),
        "payload": json_values,
        "metadata": json_objects,
        "max_attempts": st.integers(1, 3),
    },
)
_PATCH_FIELDS = {"name": short_text | st.none(), "starred": st.booleans(), "metadata": json_objects}
patches = st.sampled_from(sorted(_PATCH_FIELDS)).flatmap(
    lambda required: st.fixed_dictionaries(
        {required: _PATCH_FIELDS[required]},
        optional={name: value for name, value in _PATCH_FIELDS.items() if name != required},
    )
)
progress_fields = st.fixed_dictionaries(
    {},
    optional={
        "percent": st.floats(0, 100) | st.none(),
        "stage": texts(max_size=10) | st.none(),
        "message": texts(max_size=20) | st.none(),
        "total": st.integers(0, 10**6) | st.none(),
        "completed": st.integers(0, 10**6) | st.none(),
        "failed": st.integers(0, 10**6) | st.none(),
    },
)
slots = st.integers(0, JOB_SLOTS - 1)

creates = st.tuples(st.just("create"), job_bodies, st.sampled_from([None, None, "k1", "k2"]))
commands = st.one_of(
    creates,
    st.tuples(st.just("patch"), slots, patches),
    st.tuples(st.just("cancel"), slots, st.none() | short_text),
    st.tuples(st.just("delete"), slots),
    st.tuples(st.just("replay"), slots),
    st.tuples(st.just("cancel_newest")),
    st.tuples(st.just("admin_patch"), slots, patches),
    st.tuples(st.just("start"), slots),
    st.tuples(st.just("progress"), slots, progress_fields),
    st.tuples(st.just("log"), slots, st.sampled_from(LOG_LEVELS), texts(max_size=40), json_values),
    st.tuples(st.just("succeed"), slots, json_values, st.none() | st.sampled_from(["r", "s"])),
    st.tuples(st.just("fail"), slots, st.booleans()),
    st.tuples(st.just("acknowledge_cancel"), slots),
)

# What each HTTP command may answer, besides a 2xx.
EXPECTED_REFUSALS = {
    "create": {409},  # an Idempotency-Key reused with another body, or for a deleted job
    "patch": {404},
    "admin_patch": {404},
    "cancel": {404, 409},
    "delete": {404},
    "replay": {404},
    "cancel_newest": {404},
}


@pytest.fixture(scope="module")
def live(module_settings) -> Iterator[LiveServer]:
    server = LiveServer(module_settings("properties")).start()
    try:
        yield server
    finally:
        server.stop()


class _Run:
    """One example: a fresh owner on the shared server, and the jobs it created."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.owner = f"owner-{uuid.uuid4().hex[:12]}"
        self.client = server.client(self.owner)
        self.admin = server.client("root", "admin")
        self.jobs: list[str] = []

    def close(self) -> None:
        self.client.close()
        self.admin.close()

    def job(self, slot: int) -> str | None:
        return self.jobs[slot % len(self.jobs)] if self.jobs else None

    def running_job(self, slot: int) -> str | None:
        """A running job if there is one (workers report on those), else any job."""
        page = self.client.get("/api/v1/jobs", params={"status": "running", "limit": 100})
        running = [item["id"] for item in page.json()["items"]]
        return running[slot % len(running)] if running else self.job(slot)

    def apply(self, command: tuple[Any, ...]) -> None:
        action, *args = command
        if action in EXPECTED_REFUSALS:
            response = self._http(action, args)
            if response is None:
                return
            event(f"{action} -> {response.status_code}")
            allowed = EXPECTED_REFUSALS[action]
            assert 200 <= response.status_code < 300 or response.status_code in allowed, (
                command,
                response.status_code,
                response.text,
            )
            if response.status_code >= 400:
                body = response.json()
                assert set(body["error"]) == {"code", "message", "details"}
            elif action in ("create", "replay") and response.status_code == 201:
                self.jobs.append(response.json()["id"])
            return
        job_id = self.job(args[0]) if action == "start" else self.running_job(args[0])
        if job_id is None:
            return
        try:
            self._worker_step(action, job_id, args[1:])
        except domain_errors.DomainError as exc:
            # A step the job's state does not allow: refused, nothing recorded.
            event(f"{action} -> {type(exc).__name__}")
        else:
            event(f"{action} -> ok")

    def _http(self, action: str, args: list[Any]):
        client = self.client
        if action == "create":
            body, key = args
            headers = {"Idempotency-Key": key} if key else None
            return client.post("/api/v1/jobs", json=body, headers=headers)
        if action == "cancel_newest":
            return client.post("/api/v1/cancel")
        job_id = self.job(args[0])
        if job_id is None:
            return None
        path = f"/api/v1/jobs/{job_id}"
        if action == "patch":
            return client.patch(path, json=args[1])
        if action == "admin_patch":
            return self.admin.patch(path, json=args[1])
        if action == "cancel":
            return client.post(f"{path}/cancel", json={"reason": args[1]} if args[1] else None)
        if action == "delete":
            return client.delete(path)
        assert action == "replay"
        return client.post(f"{path}/replay")

    def _worker_step(self, action: str, job_id: str, args: list[Any]) -> None:
        server = self.server
        if action == "start":
            worker_steps.start(server, job_id)
        elif action == "progress":
            worker_steps.progress(server, job_id, **args[0])
        elif action == "log":
            level, message, data = args
            worker_steps.log(server, job_id, message, level=level, data=data)
        elif action == "succeed":
            worker_steps.succeed(server, job_id, result=args[0], result_type=args[1])
        elif action == "fail":
            worker_steps.fail(server, job_id, message="failed", retry=args[0])
        else:
            worker_steps.acknowledge_cancel(server, job_id)

    def check(self) -> None:
        store = self.server.runtime.store
        assert verification.verify(store) == []
        live_ids = set()
        for job_id in self.jobs:
            job = store.load(uuid.UUID(job_id))
            response = self.client.get(f"/api/v1/jobs/{job_id}")
            if job.deleted:
                assert response.status_code == 404
                continue
            live_ids.add(job_id)
            assert response.status_code == 200, response.text
            last_event_id = store.position_of(uuid.UUID(job_id), job.version)
            assert response.json() == documents.job_document(job, last_event_id)
            events = self.client.get(f"/api/v1/jobs/{job_id}/events").json()
            assert [event["seq"] for event in events["items"]] == list(range(1, job.version + 1))
            assert events["items"][-1]["id"] == last_event_id
            assert events["job_status"] == job.status
            for version in {1, (job.version + 1) // 2, job.version}:
                as_of = self.client.get(f"/api/v1/jobs/{job_id}", params={"as_of": version})
                assert as_of.status_code == 200, as_of.text
                then = store.load(uuid.UUID(job_id), version)
                position = store.position_of(uuid.UUID(job_id), version)
                assert as_of.json() == documents.job_document(then, position)
                assert as_of.json()["version"] == version
        listed = self.client.get("/api/v1/jobs", params={"limit": 100}).json()
        assert {item["id"] for item in listed["items"]} == live_ids
        assert listed["total"] == len(live_ids)
        feed = self.client.get("/api/v1/events", params={"limit": 1000}).json()["items"]
        assert {event["job_id"] for event in feed} == live_ids


# Fewer on PostgreSQL, where an example costs about twice as much: the first 20 of the same
# derandomized draw (the suite's time budget, tests/README.md).
FOLD_EXAMPLES = {"sqlite": 80, "postgres": 20}


def test_read_models_equal_the_fold_of_the_events(live, backend):
    @settings(
        max_examples=FOLD_EXAMPLES[backend],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(first=st.lists(creates, min_size=1, max_size=3), steps=st.lists(commands, max_size=30))
    def fold(first, steps):
        run = _Run(live)
        try:
            for command in first + steps:
                run.apply(command)
            run.check()
        finally:
            run.close()

    fold()


# The documents are JSON text that the service renders, in a TEXT column on both backends: on
# SQLite only (tests/service/edge/test_hostile_values_jobs.py stores any JSON on both).
@pytest.mark.backends("sqlite")
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=job_bodies, changes=st.lists(patches, max_size=4))
def test_job_documents_round_trip_any_json(live, body, changes):
    run = _Run(live)
    try:
        created = run.client.post("/api/v1/jobs", json=body)
        assert created.status_code == 201, created.text
        job = created.json()
        run.jobs.append(job["id"])
        for key in ("payload", "metadata", "name", "category"):
            if key in body:
                assert job[key] == (body[key] if key != "metadata" else body[key] or {})
        for change in changes:
            patched = run.client.patch(f"/api/v1/jobs/{job['id']}", json=change)
            assert patched.status_code == 200, patched.text
            for key, value in change.items():
                assert patched.json()[key] == value
        run.check()
    finally:
        run.close()
