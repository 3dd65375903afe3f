"""Stored events as the audit scans read them: decoded by the library's mapper (upcasting
old versions), or None where a row does not decode (edited outside jobtrail: verify says so);
and the scan itself, which both backends run with their own `event_hashes.Layout`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.job import Job
from projections import projector
from service.store import chain, event_hashes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence


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


class LayoutScan:
    """The audit's read scan (service/store/base.py `Scan`) over one read transaction of a
    backend whose events and hashes are where its `Layout` says; the backend says how a
    statement's rows are streamed (`rows`) and how to get a cursor."""

    def __init__(
        self, layout: event_hashes.Layout, decode: Callable[[StoredEvent], Any], *, hashed: bool
    ) -> None:
        self._layout = layout
        self._events = StoredEvents(decode)
        self._hashed = hashed  # not: a store not migrated yet (SQLite, opened to read)

    def rows(self, statement: str, parameters: tuple[Any, ...]) -> Iterable[Sequence[Any]]:
        """The rows of a statement, streamed (not all held at once)."""
        raise NotImplementedError

    def log(self) -> Iterator[chain.Link]:
        layout = self._layout
        return event_hashes.merged(self.rows(layout.orphans(), ()), self.rows(layout.log(), ()))

    def events(
        self, after: int, *, hashes: bool = False
    ) -> Iterator[tuple[chain.Link, projector.Recorded | None]]:
        statement = self._layout.events_after(hashes=hashes and self._hashed)
        return self._decoded(self.rows(statement, (after,)))

    def jobs(self) -> Iterator[tuple[chain.Link, projector.Recorded | None]]:
        return self._decoded(self.rows(self._layout.by_job(hashes=self._hashed), ()))

    def _decoded(
        self, rows: Iterable[Sequence[Any]]
    ) -> Iterator[tuple[chain.Link, projector.Recorded | None]]:
        recorded, make = self._events.recorded, chain.Link._make
        for row in rows:  # a row is a Link's fields, in order
            link = make(row)
            if type(link.state) is not bytes:  # bytea as memoryview; edited by hand: TEXT
                link = link._replace(state=event_hashes.as_bytes(link.state))
            yield link, recorded(link.id, link.job_id, link.version, link.topic, link.state)
