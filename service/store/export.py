"""Reading the event log straight from the event store, for audit tools (`jobtrail audit`):
the whole log in id order, one job's events, and one job's states event by event.

Everything streams: a chunk of events at a time, whatever the size of the store. An event is
rendered as the API renders it (`projections.documents`), with its global id as the API's
event id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.job import Job
from projections import documents

if TYPE_CHECKING:
    from collections.abc import Iterator

    from projections.projector import Recorded
    from service.store.base import EventStore

CHUNK = 1000
# Fields that change with every event: a history names them only when asked for the whole job.
_ALWAYS_CHANGING = frozenset({"version", "last_event_id", "updated_at"})


def recorded(store: EventStore, after: int = 0) -> Iterator[Recorded]:
    """Every event after the global id `after`, decoded, in id order: one read transaction
    (a consistent view of the log, however long the reading takes), streamed."""
    with store.scan() as scan:
        for link, found in scan.events(after):
            if found is None:
                raise BrokenHistory(_job_uuid(link.job_id), link.version, "does not decode")
            yield found


def job_recorded(store: EventStore, job_id: UUID, after: int = 0) -> Iterator[Recorded]:
    """One job's events after the global id `after`, in order, found by their sequence
    numbers (an indexed lookup each: no scan of the log). Stops at the first number missing."""
    seq = 1
    while (position := store.position_of(job_id, seq)) is not None:
        if position > after:
            [found] = store.recorded_after(position - 1, 1)
            yield found
        seq += 1


def event_json(r: Recorded) -> str:
    """The API's Event object of a recorded event, as one line of JSON."""
    return documents.dumps(documents.event_document(r.position, r.event))


def ndjson(store: EventStore, *, after: int = 0, job_id: UUID | None = None) -> Iterator[bytes]:
    """The event log (or one job's events) after `after` as NDJSON (UTF-8), in id order, in
    chunks of up to `CHUNK` lines (one write each)."""
    events = recorded(store, after) if job_id is None else job_recorded(store, job_id, after)
    encode, event_document = documents.encode, documents.event_document
    lines: list[bytes] = []
    for r in events:
        lines.append(encode(event_document(r.position, r.event)))
        if len(lines) >= CHUNK:
            lines.append(b"")
            yield b"\n".join(lines)
            lines.clear()
    if lines:
        lines.append(b"")
        yield b"\n".join(lines)


def _job_uuid(job_id: str | None) -> UUID:
    return UUID(job_id) if job_id else UUID(int=0)


class BrokenHistory(Exception):
    """A job's stored events do not fold: the event store was changed outside jobtrail."""

    def __init__(self, job_id: UUID, version: int, reason: str) -> None:
        super().__init__(f"job {job_id} version {version}: {reason}")
        self.job_id = job_id
        self.version = version
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One event of a job's history and the job's state after it."""

    event: dict[str, Any]  # the API's Event
    job: dict[str, Any]  # the API's Job, as of this event
    # field → (before, after), less the ever-changing ones; `progress.percent` for a field
    # inside an object field
    changed: dict[str, tuple[Any, Any]]


def history(store: EventStore, job_id: UUID) -> Iterator[Step]:
    """The job's events in order, each with the job folded up to it (the domain model's own
    fold, event by event) and what the event changed."""
    job: Job | None = None
    before: dict[str, Any] = {}
    for r in job_recorded(store, job_id):
        job = fold(job, r)
        after = documents.job_document(job, r.position)
        changed = _changes(before, after) if before else _changes({}, after, created=True)
        yield Step(event=documents.event_document(r.position, r.event), job=after, changed=changed)
        before = after


def fold(job: Job | None, r: Recorded) -> Job:
    """The job after the recorded event (`job` None before its first): the domain model's
    own fold; `BrokenHistory` when the event does not apply (edited or missing events)."""
    event = r.event
    try:
        if isinstance(event, Job.Created):
            folded = event.mutate(None)
            assert isinstance(folded, Job)
            return folded
        if job is None:
            raise ValueError("the job's first event is not `created`")
        event.mutate(job)
    except Exception as exc:  # whatever the library or the domain refuses: name the event
        raise BrokenHistory(event.originator_id, event.originator_version, str(exc)) from exc
    return job


def _changes(
    before: dict[str, Any], after: dict[str, Any], *, created: bool = False
) -> dict[str, tuple[Any, Any]]:
    """The fields whose value differs; an object's changed fields one by one. At creation,
    every field that has a value."""
    changed: dict[str, tuple[Any, Any]] = {}
    for name, value in after.items():
        old = before.get(name)
        if name in _ALWAYS_CHANGING or old == value or (created and value in (None, {})):
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            inner = _changes(old, value)
            changed.update({f"{name}.{key}": pair for key, pair in inner.items()})
        else:
            changed[name] = (old, value)
    return changed
