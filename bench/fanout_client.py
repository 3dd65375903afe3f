"""The fan-out load generator (run by bench/fanout.py on CPU 1): N raw-socket SSE subscribers,
one poster at a fixed rate; prints one JSON line of delivery latencies and server RSS.

Latency of an event = from just before its POST is sent until the last subscriber has it.
With several servers (`--port` and `--server-pid` repeated: instances on one database), the
subscribers are spread evenly over them, the poster posts to the first, and the latencies are
also given per server (`latencies_by_port`: on the posting instance, then the others).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import uvloop

_ID = re.compile(rb"(?:^|\n)id: (\d+)\n")


def rss_kib(pids: list[int]) -> int:
    return sum(_rss_kib(pid) for pid in pids)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Subscriber(asyncio.Protocol):
    def __init__(self, request: bytes, book: Book) -> None:
        self.request = request
        self.book = book
        self.rest = b""
        self.started = asyncio.get_running_loop().create_future()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.started.done():
            if not data.startswith(b"HTTP/1.1 200"):
                self.started.set_exception(RuntimeError(data[:200].decode(errors="replace")))
                return
            self.started.set_result(None)
        data = self.rest + data
        cut = data.rfind(b"\n\n")
        if cut < 0:
            self.rest = data
            return
        self.rest = data[cut + 2 :]
        now = time.perf_counter()
        last, count = self.book.last, self.book.count
        for match in _ID.finditer(data, 0, cut + 1):
            event_id = int(match.group(1))
            last[event_id] = now
            count[event_id] = count.get(event_id, 0) + 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.started.done():
            self.started.set_exception(RuntimeError(f"connection lost: {exc}"))


class Book:
    def __init__(self) -> None:
        self.last: dict[int, float] = {}
        self.count: dict[int, int] = {}


async def run(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    ports: list[int] = args.port
    books = {port: Book() for port in ports}
    auth = f"Authorization: Bearer {args.token}\r\n" if args.token else ""
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{auth}\r\n"
    ).encode()
    rss_before = rss_kib(args.server_pid)
    started = time.perf_counter()
    subscribers: list[Subscriber] = []
    for first in range(0, args.subs, 250):  # in batches: the accept backlog is finite
        to = [ports[n % len(ports)] for n in range(first, min(args.subs, first + 250))]
        batch = [Subscriber(request, books[port]) for port in to]
        for subscriber, port in zip(batch, to, strict=True):
            await loop.create_connection(lambda s=subscriber: s, "127.0.0.1", port)
        await asyncio.wait_for(asyncio.gather(*(s.started for s in batch)), 60)
        subscribers += batch
    connect_seconds = time.perf_counter() - started
    await asyncio.sleep(1.0)
    rss_connected = rss_kib(args.server_pid)
    posted: dict[int, float] = {}
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{ports[0]}", headers=headers, timeout=30
    ) as poster:
        t0 = time.perf_counter()
        for n in range(args.events):
            await asyncio.sleep(max(0.0, t0 + n / args.rate - time.perf_counter()))
            sent = time.perf_counter()
            if args.job:
                body = {"metadata": {"n": n}}
                response = await poster.patch(f"/api/v1/jobs/{args.job}", json=body)
            else:
                response = await poster.post("/publish", json={"n": n})
            response.raise_for_status()
            posted[int(response.json()["last_event_id"])] = sent
    expected = {port: len(range(n, args.subs, len(ports))) for n, port in enumerate(ports)}
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        if all(books[p].count.get(i, 0) >= expected[p] for p in ports for i in posted):
            break
        await asyncio.sleep(0.05)
    rss_after = rss_kib(args.server_pid)
    for subscriber in subscribers:
        if subscriber.transport is not None:
            subscriber.transport.close()
    by_port = {
        port: sorted(b.last[i] - t for i, t in posted.items() if i in b.last)
        for port, b in books.items()
    }
    latencies = sorted(
        max(b.last[i] for b in books.values()) - t
        for i, t in posted.items()
        if all(i in b.last for b in books.values())
    )
    delivered = sum(min(books[p].count.get(i, 0), expected[p]) for p in ports for i in posted)
    return {
        "latencies_by_port": [by_port[p] for p in ports],
        "subs": args.subs,
        "events": len(posted),
        "deliveries_expected": len(posted) * args.subs,
        "deliveries": delivered,
        "events_fully_delivered": sum(
            all(books[p].count.get(i, 0) >= expected[p] for p in ports) for i in posted
        ),
        "latencies": latencies,
        "connect_seconds": connect_seconds,
        "rss_before_kib": rss_before,
        "rss_connected_kib": rss_connected,
        "rss_after_kib": rss_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--job", default="")
    parser.add_argument("--subs", type=int, required=True)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--server-pid", type=int, action="append", required=True)
    args = parser.parse_args()
    uvloop.install()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
