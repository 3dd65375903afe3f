"""Applying the event log to the read models from their tracking position (`jobtrail
projections`), and folding the log's jobs for it (`States`, which copying a store shares);
checking them is service/store/verification.py's."""

from __future__ import annotations

import collections
import functools
from typing import TYPE_CHECKING
from uuid import UUID

from domain.job import Job
from projections import leases, projector

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from projections.projector import Recorded
    from service.store.base import EventStore

_CHUNK = 1000
_STATES_KEPT = 10_000


class States:
    """Jobs as the log folds them, event by event, in id order: the newest `kept` jobs stay in
    memory, any other is loaded as of the version before its next event (`load`)."""

    def __init__(self, load: Callable[[UUID, int], Job], kept: int = _STATES_KEPT) -> None:
        self._load = load
        self._kept = kept
        self._states: collections.OrderedDict[UUID, Job] = collections.OrderedDict()

    def fold(
        self, recorded: Sequence[Recorded], each: Callable[[Job], None] | None = None
    ) -> dict[UUID, Job]:
        """Applies the events; returns their jobs' states after them (`each` sees a job
        after each of its events)."""
        states = self._states
        jobs: dict[UUID, Job] = {}
        for r in recorded:
            event = r.event
            job_id = event.originator_id
            if isinstance(event, Job.Created):
                job = event.mutate(None)
                assert isinstance(job, Job)
            else:
                job = (
                    jobs.get(job_id)
                    or states.get(job_id)
                    or self._load(job_id, event.originator_version - 1)
                )
                event.mutate(job)
            jobs[job_id] = job
            if each is not None:
                each(job)
        for job_id, job in jobs.items():
            states[job_id] = job
            states.move_to_end(job_id)
        while len(states) > self._kept:
            states.popitem(last=False)
        return jobs


def catch_up(store: EventStore) -> int:
    """Applies every event after the tracking position; returns how many. Restart-safe:
    each chunk's rows and position commit together."""
    position = store.tracking_position()
    states = States(store.load)
    applied = 0
    while True:
        recorded = store.recorded_after(position, _CHUNK)
        if not recorded:
            return applied
        jobs = states.fold(recorded)
        store.write(functools.partial(projector.apply, recorded=recorded, jobs=jobs))
        applied += len(recorded)
        position = recorded[-1].position


def rebuild(store: EventStore) -> int:
    """Empties the read models and applies the whole log again. Run it with the service
    stopped: the service's writer keeps the read models current while it runs.

    Leases are a fold of the events but for their renewals (a heartbeat moves an expiry
    without an event): those are kept, or a live lease would look lapsed to the reaper."""
    renewed = store.read(lambda cursor: list(leases.every(cursor)))
    store.write(projector.clear)
    applied = catch_up(store)
    store.write(lambda cursor: leases.renew_all(cursor, renewed))
    return applied
