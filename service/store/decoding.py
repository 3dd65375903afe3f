"""Stored events as the audit scans read them: decoded by the library's mapper (upcasting
old versions), or None where a row does not decode (edited outside jobtrail: verify says so).
Shared by the backends' scans."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.job import Job
from projections import projector

if TYPE_CHECKING:
    from collections.abc import Callable


class StoredEvents:
    """Decodes stored events; makes each job's UUID once for its run of events."""

    def __init__(self, decode: Callable[[StoredEvent], Any]) -> None:
        self._decode = decode
        self._ids: dict[str, UUID] = {}

    def recorded(
        self, event_id: int, job_id: str | None, version: int, topic: str, state: Any
    ) -> projector.Recorded | None:
        uuid = self._ids.get(job_id) if job_id is not None else None
        if uuid is None:
            if len(self._ids) > 10_000:
                self._ids.clear()
            try:
                uuid = self._ids[job_id] = UUID(job_id)  # type: ignore[index]
            except (TypeError, ValueError):
                return None
        try:
            event = self._decode(StoredEvent(uuid, version, topic, state))
        except Exception:  # edited into something that is no event: verify says so
            return None
        if not isinstance(event, Job.Event | Job.Created):
            return None
        return projector.Recorded(position=event_id, event=event)
