"""A small HTTP/1.1 keep-alive client on asyncio streams (uvloop), and a closed-loop load
generator built on it: `python -m bench.loadgen --port P --token T --body JSON ...` runs
`--conns` connections, each sending one request after another for `--warmup` + `--duration`
seconds, and prints one JSON object: status counts (warm-up included), and the rate and
latencies of the requests that completed inside the measured window.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import uvloop

from bench.report import percentile

HOST = "127.0.0.1"
_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


def build_request(
    method: str, path: str, *, token: str | None = None, body: bytes | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head = "\r\n".join(lines).encode() + b"\r\n\r\n"
    return head + (body or b"")


class Connection:
    """One keep-alive connection; `request` sends raw bytes and reads one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.closed = False

    @classmethod
    async def open(cls, port: int, host: str = HOST) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        status_line = await self.reader.readuntil(b"\r\n")
        if not status_line.startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP response: {status_line[:40]!r}")
        status = int(status_line[9:12])
        length, chunked = 0, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                self.closed = True
        body = await self._chunked() if chunked else await self.reader.readexactly(length)
        return status, body

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def get_json(self, path: str, token: str | None = None) -> tuple[int, Any]:
        status, body = await self.request(build_request("GET", path, token=token))
        return status, json.loads(body) if body else None

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


@dataclass
class _Run:
    window_start: float
    window_end: float
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    window_statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)


async def _client(port: int, raw: bytes, run: _Run, request_timeout: float) -> None:
    conn: Connection | None = None
    while not run.stop.is_set():
        try:
            if conn is None or conn.closed:
                conn = await Connection.open(port)
            started = time.perf_counter()
            async with asyncio.timeout(request_timeout):
                status, _ = await conn.request(raw)
            ended = time.perf_counter()
        except (*_ERRORS, TimeoutError) as exc:
            run.errors[type(exc).__name__] += 1
            if conn is not None:
                await conn.close()
            conn = None
            await asyncio.sleep(0.01)
            continue
        run.statuses[status] += 1
        if run.window_start <= started and ended <= run.window_end:
            run.window_statuses[status] += 1
            if 200 <= status < 300:
                run.latencies.append(ended - started)
    if conn is not None:
        await conn.close()


async def load(
    *,
    port: int,
    raw: bytes,
    conns: int,
    warmup: float,
    duration: float,
    request_timeout: float = 10.0,
) -> dict[str, Any]:
    now = time.perf_counter()
    run = _Run(window_start=now + warmup, window_end=now + warmup + duration)
    tasks = [asyncio.create_task(_client(port, raw, run, request_timeout)) for _ in range(conns)]
    await asyncio.sleep(warmup)
    cpu_before = _cpu_seconds()
    await asyncio.sleep(duration)
    cpu = _cpu_seconds() - cpu_before
    run.stop.set()
    # Every client finishes the request in flight (bounded by its timeout), then stops.
    await asyncio.wait_for(asyncio.gather(*tasks), request_timeout + 5)
    ok = sum(n for s, n in run.window_statuses.items() if 200 <= s < 300)
    return {
        "conns": conns,
        "duration_s": duration,
        "statuses": {str(s): n for s, n in sorted(run.statuses.items())},
        "errors": dict(run.errors),
        "window_statuses": {str(s): n for s, n in sorted(run.window_statuses.items())},
        "ok_per_s": ok / duration,
        "p50_s": percentile(run.latencies, 50),
        "p99_s": percentile(run.latencies, 99),
        "max_s": max(run.latencies, default=0.0),
        "client_cpu_pct": 100 * cpu / duration,
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=None)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--path", default="/api/v1/jobs")
    parser.add_argument("--body", default=None, help="JSON request body")
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    body = args.body.encode() if args.body is not None else None
    raw = build_request(args.method, args.path, token=args.token, body=body)
    result = uvloop.run(
        load(
            port=args.port,
            raw=raw,
            conns=args.conns,
            warmup=args.warmup,
            duration=args.duration,
        )
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
