"""Crash safety, proven on a real `jobtrail serve` process killed with SIGKILL under load.

The load (tests/crashload.py) creates jobs, claims them and reports progress, log lines and
success; subscribers (tests/crash_streams.py) follow the global stream and a few jobs' own
streams. At random moments (a seeded RNG: set JOBTRAIL_CRASH_SEED to replay a run's kill
moments; the threads' interleaving is the machine's) the server is killed, and while it is down
the event store must hold every write that got a 2xx; then it starts again on the same port and
the clients carry on. At the end `jobtrail audit verify` passes, every job finished exactly
once, and every subscriber received exactly the store's events for what it follows: each once,
in order, across all its reconnections.
"""

from __future__ import annotations

import collections
import os
import random
import resource
import signal
import statistics
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from service.store import backends
from tests.crash_streams import SENTINEL, SdkFollower, SdkWatcher, StreamFollower
from tests.crashload import Creator, Found, Ledger, Served, Worker, stored_events
from tests.support import make_settings, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from service.settings import Settings

pytestmark = pytest.mark.slow

KILLS = 20  # on SQLite: with FULL, the default; then NORMAL_KILLS more with NORMAL
NORMAL_KILLS = 3
SEED = int(os.environ.get("JOBTRAIL_CRASH_SEED") or random.randrange(2**32))
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def crash_setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Settings, list[str]]:
    """The store's settings, and the environment each incarnation of the server runs with (the
    n-th is killed by the n-th kill; one more runs to the end). On SQLite the last few run with
    `NORMAL`, which differs from `FULL` only in when the WAL is fsynced: a process crash does not
    touch what the kernel was given, so a few kills show it, in the same run."""
    if request.param == "postgres":
        settings = make_settings(tmp_path, database_url=request.getfixturevalue("pg_url"))
        return settings, [""] * (KILLS + 1)
    return make_settings(tmp_path), ["FULL"] * KILLS + ["NORMAL"] * (NORMAL_KILLS + 1)


def test_no_acknowledged_write_is_lost_when_the_server_is_killed(crash_setup, tmp_path):
    settings, synchronous = crash_setup
    kills = len(synchronous) - 1
    served = Served(settings, tmp_path)
    rng = random.Random(SEED)
    print(f"\n[crash] seed {SEED} (JOBTRAIL_CRASH_SEED={SEED} replays the kill moments)")
    cpu = _cpu_seconds()
    served.start(synchronous[0])
    store = backends.open_store(settings, migrate=False)
    ledger, found = Ledger(), Found()
    alice, admin = served.token("alice"), served.token("root", "admin")
    with served.client(alice) as client:
        long_jobs = [_create(client, "crash.long") for _ in range(3)]
    followers = [
        StreamFollower(served, admin, "/api/v1/events", "all"),
        StreamFollower(served, alice, "/api/v1/events", "ends", type="created,succeeded"),
    ]
    sdk_all = SdkFollower(served, admin, "sdk-all")
    watchers = [SdkWatcher(served, alice, job_id) for job_id in long_jobs]
    creators = [Creator(served, ledger, "crash.load", f"c{n}") for n in range(2)]
    workers = [Worker(served, ledger, ["crash.load"], f"w{n}", steps=2) for n in range(3)]
    holders = [Worker(served, ledger, ["crash.long"], f"long{n}", steps=None) for n in range(3)]
    threads: list[Any] = [*followers, sdk_all, *watchers, *creators, *workers, *holders]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    try:
        # The long jobs' claims must not be lost to a kill: only their reports may be.
        wait_for(lambda: {h.holding for h in holders} == set(long_jobs), timeout=60)
        for kill in range(kills):
            _wait_for_load(served, ledger, followers, threads)
            time.sleep(rng.uniform(0, 0.2))  # the random moment of the kill
            served.kill()
            lost = found.read(stored_events(store, found.last)).missing(ledger)
            where = f"kill {kill + 1} ({synchronous[kill] or 'PostgreSQL'})"
            assert not lost, f"{where}: acknowledged, not in the store: {lost[:10]}"
            served.start(synchronous[kill + 1])
        killed_in = time.monotonic() - started
        for thread in [*creators, *workers]:
            thread.stop.set()
        for holder in holders:
            holder.finish.set()
            holder.stop.set()
        for thread in [*creators, *workers, *holders, *watchers]:
            thread.join(timeout=60)
        with served.client(alice) as client:
            sentinel = _create(client, SENTINEL)
        for thread in [*followers, sdk_all]:
            thread.join(timeout=60)
        _raise_thread_errors(threads)
        served.stop()
        verify = served.jobtrail("audit", "verify")
        events = stored_events(store)
    finally:
        _abort(served, threads)
        store.close()

    lost = Found().read(events).missing(ledger)
    opened = [f.connections for f in followers] + [w.connections for w in watchers]
    report = _report(served, ledger, events, killed_in, lost, verify, cpu, opened)
    print(f"[crash] {report}")
    assert verify.returncode == 0, f"audit verify: {verify.stdout[-3000:]}{verify.stderr}"
    assert not lost, f"{report}; lost: {lost[:10]}"
    _assert_each_job_finished_at_most_once(events, ledger, long_jobs)
    upto = [e for e in events if e["id"] <= _event_of(events, sentinel, "created")["id"]]
    _assert_streams_exact(upto, followers, sdk_all, watchers, kills)


def _wait_for_load(served, ledger, followers, threads) -> None:
    """Until this incarnation has acknowledged writes and the streams that resume at once have
    reconnected to it: each kill then lands in the middle of live traffic. (The SDK's followers
    are not waited for: they back off up to the server's 2 s `retry:` hint, and may sleep
    through an incarnation.)"""
    before = ledger.acknowledged
    incarnation = served.starts

    def ready() -> bool:
        _raise_thread_errors(threads)
        return ledger.acknowledged >= before + 10 and all(
            f.connections >= incarnation for f in followers
        )

    wait_for(ready, timeout=90, interval=0.02)


def _report(served, ledger, events, killed_in, lost, verify, cpu, opened) -> str:
    stored_messages = collections.Counter(
        (e["data"] or {}).get("message") if e["type"] == "progress" else e["message"]
        for e in events
        if e["type"] in ("progress", "log")
    )
    resent = sum(n - 1 for n in stored_messages.values() if n > 1)
    replayed = ledger.answers["create 200"]
    finals = collections.Counter(e["job_id"] for e in events if e["type"] in TERMINAL)
    created = [e["job_id"] for e in events if e["type"] == "created"]
    unfinished = sum(1 for job in created if not finals[job]) - 1  # not the sentinel
    test_cpu, server_cpu = (now - then for now, then in zip(_cpu_seconds(), cpu, strict=True))
    return (
        f"{served.starts - 1} kills ({_runs(served.synchronous)}) in {killed_in:.1f} s (a restart "
        f"took "
        f"{statistics.mean(served.start_seconds):.2f} s on average); writes acknowledged "
        f"{ledger.acknowledged} (creates {len(ledger.created)}, progress and log lines "
        f"{len(ledger.messages)}, successes {len(ledger.succeeded)}), lost {len(lost)}; "
        f"{len(events)} events stored; creates answered from their Idempotency-Key after a "
        f"lost answer: {replayed}; reports stored twice (resent after a lost answer): {resent}; "
        f"jobs left unfinished (pending, or their lease lapsed during the last restart): "
        f"{unfinished}; streams opened (2 resuming at once, 3 SDK watchers): {opened}; "
        f"audit verify exit {verify.returncode}; CPU: test process {test_cpu:.1f} s, "
        f"jobtrail processes {server_cpu:.1f} s; answers {dict(sorted(ledger.answers.items()))}"
    )


def _runs(settings: list[str]) -> str:
    """`FULL`, `FULL`, `NORMAL` → "2 FULL, 1 NORMAL" (the settings the killed incarnations ran)."""
    counted = collections.Counter(settings[:-1])
    return ", ".join(f"{n} {setting or 'PostgreSQL'}" for setting, n in counted.items())


def _assert_each_job_finished_at_most_once(events, ledger, long_jobs) -> None:
    """One job per acknowledged create (an Idempotency-Key resent after a kill never made a
    second); no job has more than one final event, and the long jobs have theirs. (A job whose
    short lease lapsed during the last restart may still be waiting for its retry.)"""
    types_of: dict[str, list[str]] = collections.defaultdict(list)
    created_type: dict[str, str] = {}
    for event in events:
        types_of[event["job_id"]].append(event["type"])
        if event["type"] == "created":
            created_type[event["job_id"]] = event["data"]["type"]
    load = {job for job, kind in created_type.items() if kind == "crash.load"}
    assert load == set(ledger.created.values())
    assert len(ledger.created) == len(set(ledger.created.values()))
    for job in load:
        finals = [t for t in types_of[job] if t in TERMINAL]
        assert finals in ([], [types_of[job][-1]]), (job, types_of[job])
    for job in long_jobs:
        finals = [t for t in types_of[job] if t in TERMINAL]
        assert finals == ["succeeded"] == types_of[job][-1:], (job, types_of[job])
    assert ledger.succeeded <= {job for job, t in types_of.items() if t[-1] == "succeeded"}


def _assert_streams_exact(events, followers, sdk_all, watchers, kills) -> None:
    everything = [e["id"] for e in events]
    ends = [e for e in events if e["type"] in ("created", "succeeded")]
    for follower, expected in ((followers[0], events), (followers[1], ends)):
        assert follower.connections >= kills + 1, (follower.name, follower.connections)
        _assert_same(follower.name, follower.received, expected)
    assert [e["id"] for e in sdk_all.received] == everything
    _assert_same("sdk-all", sdk_all.received, events)
    for watcher in watchers:
        own = [e for e in events if e["job_id"] == watcher.job_id]
        _assert_same(watcher.name, watcher.received, own)
        assert watcher.connections > 1, (watcher.name, watcher.connections)  # it resumed
        assert watcher.final is not None and watcher.final["status"] in TERMINAL
        assert watcher.final["version"] == len(own)


def _assert_same(name: str, received: list[dict[str, Any]], expected: list[dict[str, Any]]):
    got, want = [e["id"] for e in received], [e["id"] for e in expected]
    duplicates = len(got) - len(set(got))
    gaps = sorted(set(want) - set(got))
    assert got == want, f"{name}: {len(got)} events, {duplicates} twice, missing {gaps[:10]}"
    assert received == expected, f"{name}: the same ids, but not the same events"


@pytest.mark.postgres
def test_a_worker_killed_mid_job_is_retried_and_finishes_once_on_postgres(pg_url, tmp_path):
    """Two real `jobtrail worker` processes; the one whose handler runs the job is killed with
    SIGKILL mid-job: the job's lease lapses, the reaper gives it back (a failed attempt,
    `lease_expired`), the other worker runs it again and finishes it, once. (On SQLite:
    tests/service/sdk/test_sdk.py, test_a_killed_worker_s_job_is_retried_by_another_….)"""
    settings = make_settings(tmp_path, database_url=pg_url)
    served = Served(settings, tmp_path, JOBTRAIL_RETRY_BASE_SECONDS="0.2")  # a short backoff
    served.start()
    command = ["worker", "--handlers", "tests.crashload:HANDLERS", "--url", served.url]
    command += ["--token", served.token("w", "worker"), "--lease", "2", "--concurrency", "1"]
    workers = {}
    try:
        with served.client(served.token("alice")) as client:
            job_id = _create(client, "crash.stall", max_attempts=3)
            for _ in range(2):
                process = served.spawn(*command)
                workers[process.pid] = process

            def reported(attempt: int) -> dict[str, Any] | None:
                job = client.get(f"/jobs/{job_id}").json()
                message = job["progress"]["message"] or ""
                return job if message.startswith(f"attempt {attempt} ") else None

            mid_job = wait_for(lambda: reported(1), timeout=60, interval=0.05)
            killed = workers[int(mid_job["progress"]["message"].rpartition(" ")[2])]
            killed.send_signal(signal.SIGKILL)
            assert killed.wait(timeout=30) == -signal.SIGKILL
            done = wait_for(
                lambda: (j := client.get(f"/jobs/{job_id}").json())["finished_at"] and j,
                timeout=60,
                interval=0.05,
            )
            events = client.get(f"/jobs/{job_id}/events").json()["items"]
        [survivor] = [p for p in workers.values() if p is not killed]
        survivor.terminate()
        assert survivor.wait(timeout=60) == 0
        served.stop()
        verify = served.jobtrail("audit", "verify")
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        _abort(served, [])
    assert mid_job["status"] == "running" and mid_job["attempt"] == 1
    types = [e["type"] for e in events]
    expected = ["created", "started", "progress", "retry_scheduled", "started", "progress"]
    assert types == [*expected, "succeeded"], types
    assert events[3]["data"]["error"]["code"] == "lease_expired", events[3]
    assert events[5]["data"]["message"] == f"attempt 2 {survivor.pid}", events[5]
    assert done["status"] == "succeeded" and done["attempt"] == 2
    assert done["result"] == {"attempt": 2}
    assert verify.returncode == 0, f"audit verify: {verify.stdout[-3000:]}{verify.stderr}"
    print(f"\n[crash] worker {killed.pid} killed mid-job; finished once by {survivor.pid}: {types}")


def _cpu_seconds() -> tuple[float, float]:
    """CPU time (user and system) of this process, and of its children waited for so far."""
    me, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def _create(client: httpx.Client, job_type: str, **fields: Any) -> str:
    response = client.post("/jobs", json={"type": job_type, "max_attempts": 20} | fields)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def _unfinished(client: httpx.Client) -> int:
    response = client.get("/jobs", params={"finished": "false", "limit": 1})
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def _event_of(events: list[dict[str, Any]], job_id: str, kind: str) -> dict[str, Any]:
    return next(e for e in events if e["job_id"] == job_id and e["type"] == kind)


def _raise_thread_errors(threads: list[Any]) -> None:
    for thread in threads:
        if thread.error is not None:
            raise AssertionError(f"{thread.name} failed") from thread.error


def _abort(served: Served, threads: list[Any]) -> None:
    """On any way out: no process or thread of the test left running."""
    for thread in threads:
        for flag in ("stop", "finish"):
            if hasattr(thread, flag):
                getattr(thread, flag).set()
        if hasattr(thread, "caller"):
            thread.caller.abort.set()
        if hasattr(thread, "client") and thread.client is not None:
            thread.client.close()  # an SDK follower: its stream ends
    served.close()
    for thread in threads:
        thread.join(timeout=10)
