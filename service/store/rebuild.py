"""Applying the event log to the read models from their tracking position (`jobtrail
projections`); checking them is service/store/verification.py's."""

from __future__ import annotations

import collections
import functools
from typing import TYPE_CHECKING
from uuid import UUID

from domain.job import Job
from projections import projector

if TYPE_CHECKING:
    from service.store.base import EventStore

_CHUNK = 1000
_STATES_KEPT = 10_000


def catch_up(store: EventStore) -> int:
    """Applies every event after the tracking position; returns how many. Restart-safe:
    each chunk's rows and position commit together."""
    position = store.tracking_position()
    states: collections.OrderedDict[UUID, Job] = collections.OrderedDict()
    applied = 0
    while True:
        recorded = store.recorded_after(position, _CHUNK)
        if not recorded:
            return applied
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
                    or store.load(job_id, event.originator_version - 1)
                )
                event.mutate(job)
            jobs[job_id] = job
        store.write(functools.partial(projector.apply, recorded=recorded, jobs=jobs))
        for job_id, job in jobs.items():
            states[job_id] = job
            states.move_to_end(job_id)
        while len(states) > _STATES_KEPT:
            states.popitem(last=False)
        applied += len(recorded)
        position = recorded[-1].position


def rebuild(store: EventStore) -> int:
    """Empties the read models and applies the whole log again. Run it with the service
    stopped: the service's writer keeps the read models current while it runs."""
    store.write(projector.clear)
    return catch_up(store)
