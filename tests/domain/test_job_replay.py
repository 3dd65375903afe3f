from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application

from domain.job import Job
from tests.domain import jobs
from tests.domain.jobs import at


def succeeded_story() -> Job:
    job = jobs.new(name="Intro", payload={"script": "…"}, metadata={"project_id": "p-42"})
    jobs.start(job, now=at(1))
    job.report_progress({"percent": 50.0, "stage": "rendering"}, now=at(2))
    job.log(level="info", message="Rendering", data={"clips": 3}, now=at(3))
    job.succeed(result={"url": "s3://out.mp4"}, result_type="video", now=at(4))
    job.update({"starred": True}, now=at(5))
    return job


def retried_story() -> Job:
    job = jobs.new(max_attempts=2, run_at=at(1))
    jobs.start(job, now=at(1))
    jobs.fail(job, now=at(2))
    assert job.run_at is not None
    jobs.start(job, now=job.run_at, token="lease-2")
    job.report_progress({"total": 200, "completed": 150, "failed": 2}, now=at(20))
    jobs.fail(job, now=at(21))
    return job


def cancelled_story() -> Job:
    job = jobs.new(priority="low")
    jobs.start(job, now=at(1))
    job.cancel(reason="not needed", now=at(2))
    job.cancel(reason="again", now=at(3))
    job.acknowledge_cancel(now=at(4))
    job.update({"name": "Old", "metadata": {"a": [1, 2]}}, now=at(5))
    job.delete(now=at(6))
    return job


def deleted_while_running_story() -> Job:
    # A batch parent runs from its creation (no worker claims it) and follows its children.
    job = jobs.new(batch_size=2)
    job.record_child(old="pending", new="running", now=at(1))
    job.delete(now=at(2))
    return job


Story = Callable[[], Job]
STORIES: dict[str, Story] = {
    "succeeded": succeeded_story,
    "retried-then-failed": retried_story,
    "cancelled-updated-deleted": cancelled_story,
    "deleted-while-running": deleted_while_running_story,
}
EACH_STORY = [pytest.param(story, id=name) for name, story in STORIES.items()]


def fold(events: Sequence[Any]) -> Job:
    job = events[0].mutate(None)
    for event in events[1:]:
        job = event.mutate(job)
    assert isinstance(job, Job)
    return job


def in_memory_app(**env: str) -> Application[UUID]:
    return Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo", **env})


def test_stories_cover_every_event_type() -> None:
    covered = {kind for story in STORIES.values() for kind in jobs.kinds(story())}
    assert covered == jobs.EVENT_TYPES


@pytest.mark.parametrize("story", EACH_STORY)
def test_replaying_events_rebuilds_the_same_state(story: Story) -> None:
    job = story()
    rebuilt = fold(job.collect_events())

    assert jobs.state_of(rebuilt) == jobs.state_of(job)


@pytest.mark.parametrize("story", EACH_STORY)
def test_stored_events_rebuild_the_same_state_at_every_version(story: Story) -> None:
    job = story()
    events = list(job.pending_events)
    app = in_memory_app()
    app.save(job)

    assert jobs.state_of(app.repository.get(job.id)) == jobs.state_of(job)
    for version in range(1, len(events) + 1):
        then: Job = app.repository.get(job.id, version=version)
        assert then.version == version
        assert jobs.state_of(then) == jobs.state_of(fold(events[:version]))


def test_time_travel_shows_the_job_as_it_was() -> None:
    job = succeeded_story()
    app = in_memory_app()
    app.save(job)

    def as_of(version: int) -> Job:
        then: Job = app.repository.get(job.id, version=version)
        return then

    assert [as_of(v).status for v in range(1, 7)] == [
        "pending",
        "running",
        "running",
        "running",
        "succeeded",
        "succeeded",
    ]
    assert as_of(2).progress["percent"] is None
    assert as_of(3).progress["percent"] == 50.0
    assert as_of(5).starred is False
    assert as_of(6).starred is True


@pytest.mark.parametrize("story", EACH_STORY)
def test_snapshot_round_trip_gives_the_same_state(story: Story) -> None:
    job = story()
    restored = Job.Snapshot.take(job).mutate(None)

    assert isinstance(restored, Job)
    assert jobs.state_of(restored) == jobs.state_of(job)


@pytest.mark.parametrize("story", EACH_STORY)
def test_stored_snapshot_gives_the_same_state(story: Story) -> None:
    job = story()
    app = in_memory_app(IS_SNAPSHOTTING_ENABLED="y")
    app.save(job)
    app.take_snapshot(job.id)

    assert app.snapshots is not None
    assert [s.originator_version for s in app.snapshots.get(job.id)] == [job.version]
    assert jobs.state_of(app.repository.get(job.id)) == jobs.state_of(job)
