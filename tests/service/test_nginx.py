"""docs/deploy/nginx.conf, as the README gives it, in front of two instances on one PostgreSQL
database: requests go to both, a job's live stream through nginx delivers each event while the
job still runs, and when the instance serving it stops, the Python client resumes through nginx
on the other without a gap or a repeat.

Needs Debian's nginx (`nginx-light` is enough): without it the test skips, saying why; CI
(.ci/run) installs it and sets JOBTRAIL_REQUIRE_NGINX=1, so that it fails instead."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.sdk.client import Client
from service.sdk.models import Event
from tests.support import TLS, LiveServer, call, claim, free_port, two_servers, wait_for

pytestmark = pytest.mark.postgres

SNIPPET = Path(__file__).parents[2] / "docs" / "deploy" / "nginx.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        reason = "nginx is not installed (Debian: apt-get install nginx-light)"
        if os.environ.get("JOBTRAIL_REQUIRE_NGINX") == "1":
            pytest.fail(f"JOBTRAIL_REQUIRE_NGINX=1, but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def configure(directory: Path, upstreams: list[str], port: int) -> Path:
    """The README's snippet with these instances and this port, inside a minimal nginx.conf
    whose files all live in `directory`."""
    snippet = SNIPPET.read_text()
    for default, address in zip(("127.0.0.1:8001", "127.0.0.1:8002"), upstreams, strict=True):
        assert f"server {default} " in snippet
        snippet = snippet.replace(f"server {default} ", f"server {address} ")
    assert "listen 8000;" in snippet
    snippet = snippet.replace("listen 8000;", f"listen 127.0.0.1:{port};")
    (directory / "jobtrail.conf").write_text(snippet)
    temp = " ".join(
        f"{kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = directory / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        f"http {{ access_log off; {temp} include {directory / 'jobtrail.conf'}; }}\n"
    )
    return main


@pytest.fixture
def instances(pg_settings) -> Iterator[tuple[LiveServer, LiveServer]]:
    with two_servers(pg_settings) as both:
        yield both


@pytest.fixture
def nginx(instances, tmp_path: Path) -> Iterator[str]:
    binary = nginx_binary()
    port = free_port()
    config = configure(tmp_path, [i.url.removeprefix("http://") for i in instances], port)
    with subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as process:
        try:

            def accepting() -> bool:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                with socket.socket() as probe:
                    return probe.connect_ex(("127.0.0.1", port)) == 0

            wait_for(accepting)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGQUIT)  # graceful: open streams finish first
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def served(instance: LiveServer) -> int:
    """How many requests this instance has answered (its own metrics)."""
    return sum(instance.runtime.metrics.http.answered.values())


def test_nginx_spreads_requests_streams_live_and_the_client_resumes_on_the_other(instances, nginx):
    a, b = instances
    worker_token = a.token("w-1", "worker")
    with (
        Client(nginx, a.token("alice")) as alice,
        httpx.Client(
            verify=TLS, base_url=nginx, headers={"Authorization": f"Bearer {worker_token}"}
        ) as worker,
    ):
        before = served(a), served(b)
        job = alice.create_job("t.a", name="behind nginx")
        for _ in range(10):
            alice.get_job(job.id)
        assert served(a) > before[0] and served(b) > before[1]  # both took requests

        claimed = claim(worker, ["t.a"])
        assert claimed["job"]["id"] == job.id

        received: list[Event] = []
        watch = alice.watch(job.id)
        reader = threading.Thread(target=lambda: received.extend(watch))  # until the end
        reader.start()
        # Live through nginx: the job is still running, so the stream is open, and its
        # events have arrived.
        wait_for(lambda: [e.type for e in received] == ["created", "started"])
        progress = call(worker, claimed, "progress", {"percent": 10.0})
        assert progress.status_code == 200, progress.text
        wait_for(lambda: len(received) == 3)

        # The instance serving the stream stops: the client reconnects through nginx with
        # Last-Event-ID and continues on the other, while the worker keeps writing.
        streaming = a if a.runtime.hub.subscribers else b
        streaming.stop()
        for percent in (20.0, 30.0):
            progress = call(worker, claimed, "progress", {"percent": percent})
            assert progress.status_code == 200, progress.text
        succeeded = call(worker, claimed, "succeed", {"result": {"ok": True}})
        assert succeeded.status_code == 200, succeeded.text
        reader.join(timeout=30)
        assert not reader.is_alive()

        history = list(alice.iter_job_events(job.id))
        assert [e.id for e in received] == [e.id for e in history]  # no gap, no repeat
        assert received[-1].type == "succeeded"
        assert watch.connections >= 2 and watch.final is not None
