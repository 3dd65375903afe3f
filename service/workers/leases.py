"""Leases of running jobs: read and renewed inside the writer, expired by a reaper.

A lease starts with the job's `started` event (the projector writes its row). Renewals are
not events: the writer updates the row in the transaction of the call that renews it, so a
renewal is as durable as any write, and survives restarts. The reaper finds lapsed leases
in the read model and submits `expire_lease`, which re-checks under the writer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from domain import retry
from projections import documents
from projections import leases as leases_view
from service import errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from projections.reads import ReadPool
    from service.store.unit_of_work import UnitOfWork
    from service.store.writer import Writer

# Stateless (OS entropy): the global `random` state is not ours to move.
_JITTER = random.SystemRandom()

log = logging.getLogger("jobtrail.leases")
_REAP_BATCH = 200


def to_datetime(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def current(uow: UnitOfWork, job_id: uuid.UUID) -> tuple[str, float, int] | None:
    """(token, seconds, expiry ms) of the job's lease, as this group has left it.

    The row is read once per group (the group's transaction holds the write lock, so it stays
    true), and not at all while a lease this writer committed is still unexpired: a lease only
    ever changes by a renewal, which can only move its expiry later (whichever process renews
    it), or by an event (a new attempt, an ended one), after which the writer forgets it.
    So a known lease that has not expired yet is valid at least until then.
    """
    if job_id not in uow.leases:
        known = uow.known_leases.get(job_id)
        if known is not None and known[2] > documents.epoch_ms(uow.now):
            uow.leases[job_id] = known
        else:
            row = uow.read(leases_view.get, job_id)
            lease = None if row is None else (row.token, row.seconds, row.expires_ms)
            uow.leases[job_id] = lease
    return uow.leases[job_id]


def expiry_of(uow: UnitOfWork, job_id: uuid.UUID, token: str) -> datetime | None:
    lease = current(uow, job_id)
    if lease is None or lease[0] != token:
        return None
    return to_datetime(lease[2])


def renew(uow: UnitOfWork, job_id: uuid.UUID, token: str, seconds: float) -> datetime:
    """Extends the lease by its own length from now; call only once nothing can raise."""
    expires = documents.epoch_ms(uow.now + timedelta(seconds=seconds))
    uow.leases[job_id] = (token, seconds, expires)
    uow.writes.append(
        functools.partial(leases_view.renew, job_id=job_id, token=token, expires_ms=expires)
    )
    return to_datetime(expires)


def expire_lease(job_id: uuid.UUID, policy: retry.RetryPolicy) -> Callable[[UnitOfWork], bool]:
    """Ends the attempt whose lease lapsed, unless it was renewed or has ended meanwhile."""

    def command(uow: UnitOfWork) -> bool:
        try:
            job = uow.get(job_id)
        except errors.JobNotFound:
            return False
        if job.deleted or job.status != "running":
            return False
        lease = current(uow, job_id)
        if lease is not None and lease[0] == job.lease_token and to_datetime(lease[2]) > uow.now:
            return False
        if lease is None and job.lease_expires_at is not None and job.lease_expires_at > uow.now:
            return False
        job.expire_lease(now=uow.now, policy=policy, jitter=_JITTER.random())
        return True

    return command


class Reaper:
    """Expires lapsed leases: every `interval` seconds, and at the next known expiry."""

    def __init__(
        self,
        writer: Writer,
        reads: ReadPool,
        policy: retry.RetryPolicy,
        interval: float,
        on_expired: Callable[[], None] | None = None,
    ) -> None:
        self._on_expired = on_expired
        self._writer = writer
        self._reads = reads
        self._policy = policy
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.expired = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lease-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                delay = await self.reap_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed round is retried at the next one
                log.exception("lease reaper round failed")
                delay = self._interval
            await asyncio.sleep(delay)

    async def reap_once(self) -> float:
        """Expires what has lapsed; returns how long to sleep until the next round."""
        now = documents.epoch_ms(datetime.now(UTC))
        async with self._reads.connection() as conn:
            lapsed = await leases_view.expired(conn, now, _REAP_BATCH)
        for job_id in lapsed:
            committed = await self._writer.run(expire_lease(job_id, self._policy))
            if committed.value:
                self.expired += 1
                if self._on_expired is not None:
                    self._on_expired()
        if len(lapsed) == _REAP_BATCH:
            return 0.0
        async with self._reads.connection() as conn:
            next_expiry = await leases_view.next_expiry(conn)
        if next_expiry is None:
            return self._interval
        until = (next_expiry - documents.epoch_ms(datetime.now(UTC))) / 1000 + 0.005
        return min(self._interval, max(until, 0.005))
