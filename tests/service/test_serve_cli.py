"""`jobtrail serve` as a user runs it: a real process, its real output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from service.edge.auth import TokenVerifier
from tests.support import TLS, free_port, make_settings, wait_for


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", verify=TLS, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_never_writes_a_query_token_to_its_output(tmp_path):
    settings = make_settings(tmp_path)
    token = TokenVerifier.from_settings(settings).issue("alice", ["jobs:read", "jobs:write"], 600)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "JOBTRAIL_DATABASE_URL": settings.database_url,
        "JOBTRAIL_JWT_SECRET": settings.jwt_secret or "",
    }
    jobtrail = Path(sys.executable).parent / "jobtrail"  # the installed command
    command = [str(jobtrail), "serve", "--port", str(port), "--print-token"]
    output = tmp_path / "serve.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _ready(url), timeout=30)
        with httpx.Client(verify=TLS, base_url=url, timeout=10) as client:
            job = client.post(
                "/api/v1/jobs", json={"type": "t"}, headers={"Authorization": f"Bearer {token}"}
            ).json()
            client.delete(f"/api/v1/jobs/{job['id']}", headers={"Authorization": f"Bearer {token}"})
            # The stream form of a deleted job answers at once: no stream is left open.
            answer = client.get(
                f"/api/v1/jobs/{job['id']}/events", params={"stream": "true", "access_token": token}
            )
            assert answer.status_code == 404
            refused = client.get(
                "/api/v1/events", params={"stream": "true", "access_token": "x" * 40}
            )
            assert refused.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
    logged = output.read_text()
    assert "jobtrail listening on" in logged  # the output was captured at all
    assert f"{url}/?token=ey" in logged  # the dashboard's sign-in link, with the dev token
    assert token not in logged
    assert "x" * 40 not in logged
