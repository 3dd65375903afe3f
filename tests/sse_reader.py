"""Reading Server-Sent Events over real HTTP, as a browser's EventSource parses them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Message:
    """One dispatched block: an event, a `retry:` hint or a comment (heartbeat)."""

    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    retry: int | None = None
    comment: str | None = None

    @property
    def json(self) -> Any:
        return json.loads("\n".join(self.data))


def messages(response: httpx.Response) -> Iterator[Message]:
    """The blocks of an open streaming response, in order, until the server closes it."""
    current = Message()
    for line in response.iter_lines():
        if line == "":
            if current != Message():
                yield current
            current = Message()
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            current.comment = value
        elif name == "id":
            current.id = value
        elif name == "event":
            current.event = value
        elif name == "data":
            current.data.append(value)
        elif name == "retry":
            current.retry = int(value)
    if current != Message():
        yield current


def events(response: httpx.Response) -> Iterator[Message]:
    """Only the blocks that carry data (events and `end`)."""
    return (m for m in messages(response) if m.data)
