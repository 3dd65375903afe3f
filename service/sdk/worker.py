"""The worker SDK: claim → run → succeed / fail, with the lease renewed in the background.

    async def render(job: JobContext) -> dict:
        for frame in range(10):
            await job.checkpoint()            # raises Cancelled once the owner asked to stop
            await job.progress(percent=frame * 10)
        return {"frames": 10}

    worker = Worker(client, {"video.render": render}, concurrency=4)
    await worker.run()                        # until worker.stop()

A handler's return value is the job's `result`; an exception is a failed attempt with its
message (retried while attempts are left; raise `Failure(..., retry=False)` to fail at once).
A handler that ignores a cancel request for `grace_seconds` is cancelled (asyncio) and the
cancel acknowledged. On stop the worker claims no more, lets running jobs finish within
`grace_seconds`, then gives the rest back (a failed attempt with code `worker_stopped`,
retried by another worker). `run_until_signalled()` stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.sdk.errors import ApiError, LeaseLostError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

    from service.sdk.client import AsyncClient
    from service.sdk.models import Claim, Job

    Handler = Callable[["JobContext"], Coroutine[Any, Any, Any]]

log = logging.getLogger("jobtrail.worker")


class Cancelled(Exception):
    """The job's owner asked it to stop: raised by `JobContext.checkpoint()`."""


class Failure(Exception):
    """A failed attempt with a code; `retry=False` fails the job at once."""

    def __init__(
        self, message: str, *, code: str = "error", details: Any = None, retry: bool = True
    ) -> None:
        super().__init__(message)
        self.code = code
        self.details = details
        self.retry = retry


class JobContext:
    """What a handler gets: the job, and the calls that report on it."""

    def __init__(self, client: AsyncClient, claim: Claim) -> None:
        self._client = client
        self._claim = claim
        self.cancel_requested = False
        self.forced_cancel = False  # set when the SDK stopped a handler that ignored a cancel
        self.result_type: str | None = None

    @property
    def job(self) -> Job:
        return self._claim.job

    @property
    def id(self) -> str:
        return self._claim.job_id

    @property
    def payload(self) -> Any:
        return self._claim.job.payload

    @property
    def attempt(self) -> int:
        return self._claim.job.attempt

    async def progress(self, **fields: Any) -> None:
        """Reports progress (percent, stage, message, total, completed, failed)."""
        state = await self._client.progress(self.id, self._claim.token, **fields)
        self.cancel_requested = self.cancel_requested or state.cancel_requested

    async def log(self, message: str, *, level: str = "info", data: Any = None) -> None:
        """Appends a log line to the job."""
        state = await self._client.log(self.id, self._claim.token, message, level=level, data=data)
        self.cancel_requested = self.cancel_requested or state.cancel_requested

    async def checkpoint(self) -> None:
        """Raises `Cancelled` if the owner asked the job to stop (learnt from the last call)."""
        if self.cancel_requested:
            raise Cancelled()


@dataclass(slots=True)
class _Running:
    context: JobContext
    task: asyncio.Task[Any]


class Worker:
    """Runs handlers for claimed jobs, `concurrency` at a time."""

    def __init__(
        self,
        client: AsyncClient,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 4,
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        wait_seconds: float = 10.0,
        grace_seconds: float = 10.0,
    ) -> None:
        if not handlers:
            raise ValueError("A worker needs at least one handler.")
        self._client = client
        self._handlers = dict(handlers)
        self._concurrency = concurrency
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self._lease_seconds = lease_seconds
        self._wait_seconds = wait_seconds
        self._grace_seconds = grace_seconds
        self._stopping = asyncio.Event()
        self._running: dict[str, _Running] = {}
        self.completed = 0

    def stop(self) -> None:
        """Stops claiming; `run()` returns once running jobs finished or were given back."""
        self._stopping.set()

    async def run(self) -> None:
        slots = [asyncio.create_task(self._slot(i)) for i in range(self._concurrency)]
        await self._stopping.wait()
        _, late = await asyncio.wait(slots, timeout=self._grace_seconds)
        if late:
            await self._give_back()
        await asyncio.gather(*slots, return_exceptions=True)

    async def run_until_signalled(self) -> None:
        """`run()`, stopping on SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        try:
            await self.run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    async def _slot(self, index: int) -> None:
        while not self._stopping.is_set():
            claim = await self._claim()
            if claim is not None:
                await self._execute(claim)

    async def _claim(self) -> Claim | None:
        request = asyncio.create_task(
            self._client.claim(
                list(self._handlers),
                worker_id=self.worker_id,
                lease_seconds=self._lease_seconds,
                wait_seconds=self._wait_seconds,
            )
        )
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if request not in done:
            # Stopping: the claim in flight is cut off, so that a stop is prompt (an idle
            # long poll would hold it up to wait_seconds). The server claims nothing for a
            # claimer that has gone while it waits; one granted in the instant of the cut is
            # lost to this worker, and its job runs again once its lease lapses.
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                return await request
            return None
        try:
            return request.result()
        except (ApiError, OSError, ConnectionError) as exc:
            log.warning("claim failed: %s", exc)
            await asyncio.sleep(1.0)
            return None
        except Exception as exc:  # httpx transport errors and the like: back off, go on
            log.warning("claim failed: %r", exc)
            await asyncio.sleep(1.0)
            return None

    async def _execute(self, claim: Claim) -> None:
        context = JobContext(self._client, claim)
        handler = self._handlers[claim.job.type]
        task = asyncio.create_task(handler(context))
        self._running[claim.job_id] = _Running(context, task)
        renewer = asyncio.create_task(self._renew(context, task))
        try:
            await self._report(context, task)
        finally:
            renewer.cancel()
            self._running.pop(claim.job_id, None)
            self.completed += 1

    async def _renew(self, context: JobContext, task: asyncio.Task[Any]) -> None:
        cancel_seen: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(self._lease_seconds / 3, 0.2))
            if context.cancel_requested:
                cancel_seen = cancel_seen or loop.time()
                if loop.time() - cancel_seen >= self._grace_seconds:
                    # The handler skipped its checkpoints: stop it, and acknowledge the cancel.
                    log.warning("job %s ignored its cancel request; stopping it", context.id)
                    context.forced_cancel = True
                    task.cancel()
                    return
            try:
                state = await self._client.heartbeat(context.id, context._claim.token)
            except LeaseLostError:
                log.warning("lease of job %s lost; abandoning it", context.id)
                task.cancel()
                return
            except Exception as exc:  # a missed heartbeat: the next one may get through
                log.warning("heartbeat of job %s failed: %r", context.id, exc)
                continue
            context.cancel_requested = context.cancel_requested or state.cancel_requested

    async def _report(self, context: JobContext, task: asyncio.Task[Any]) -> None:
        token = context._claim.token
        try:
            try:
                result = await task
            except Cancelled:
                await self._client.cancelled(context.id, token)
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
                if context.forced_cancel:
                    await self._client.cancelled(context.id, token)
                # Else given back on shutdown, or abandoned after the lease was lost.
            except LeaseLostError:
                log.warning("job %s: lease lost", context.id)
            except Failure as exc:
                await self._client.fail(
                    context.id,
                    token,
                    str(exc) or type(exc).__name__,
                    code=exc.code,
                    details=exc.details,
                    retry=exc.retry,
                )
            except Exception as exc:
                await self._client.fail(
                    context.id, token, str(exc) or type(exc).__name__, code=type(exc).__name__
                )
            else:
                await self._client.succeed(context.id, token, result, context.result_type)
        except LeaseLostError:
            log.warning("job %s: lease lost before its outcome was reported", context.id)
        except ApiError as exc:
            log.warning("job %s: reporting its outcome failed: %s", context.id, exc)

    async def _give_back(self) -> None:
        for job_id, running in list(self._running.items()):
            running.task.cancel()
            with contextlib.suppress(ApiError, Exception):
                await self._client.fail(
                    job_id,
                    running.context._claim.token,
                    "The worker stopped before the job finished.",
                    code="worker_stopped",
                )
