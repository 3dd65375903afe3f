"""The NUL character (U+0000) where it would reach a plain text column: JSON allows it in a
string, SQLite stores it, PostgreSQL refuses it. Every backend answers 400 (401 for a token's
`sub`) and writes nothing: shared by the SQLite tests and the PostgreSQL ones."""

from __future__ import annotations

import httpx

from tests.support import LiveServer

NO_NUL = "must not contain the NUL character (U+0000)"


def check_nul_is_refused_everywhere(server: LiveServer) -> None:
    with server.client("alice") as alice:
        for field in ("type", "category", "name"):
            body = {"type": "t", field: "a\u0000b"}
            answer = alice.post("/api/v1/jobs", json=body)
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["details"] == {field: NO_NUL}
        for query in ("category=x%00", "type=a,b%00c", "result_type=%00"):
            answer = alice.get(f"/api/v1/jobs?{query}")
            assert answer.status_code == 400, answer.text
            assert list(answer.json()["error"]["details"].values()) == [NO_NUL]
        assert alice.get("/api/v1/jobs").json()["total"] == 0  # nothing was written
    token = server.verifier.issue("bad\u0000owner", ["jobs:read", "jobs:write"], 600)
    answer = httpx.post(
        f"{server.url}/api/v1/jobs",
        json={"type": "t"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["details"] == {"sub": NO_NUL}
