"""httpx clients that share one TLS context. Each `httpx.Client()` otherwise loads the CA bundle
anew (0.15 s on a busy machine), which the many clients of the auth and tenancy tests (one per
credential and caller) would pay over and over. The servers here are plain http anyway."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import TLS, LiveServer


def client(base_url: str, **options: Any) -> httpx.Client:
    return httpx.Client(base_url=base_url, verify=TLS, timeout=30, **options)


def bearer(server: LiveServer, sub: str, scopes: str = "jobs:read jobs:write") -> httpx.Client:
    """A client for `sub`, as `LiveServer.client` makes one."""
    return bearer_token(server.url, server.token(sub, scopes))


def bearer_token(base_url: str, token: str) -> httpx.Client:
    return client(base_url, headers={"Authorization": f"Bearer {token}"})
