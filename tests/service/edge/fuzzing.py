"""What the schemathesis runs share (test_fuzz.py, test_fuzz_stateful.py): the server they
fuzz, the token they send, the rules a schema cannot state, and a tally of the cases sent, under
a time bound, printed at the end of the run."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from service.edge import bodies
from tests.support import LiveServer, make_settings

# Every scope but admin: the fuzzer owns jobs and works on them as their worker too.
SCOPES = "jobs:read jobs:write worker"
# Past these, no new case is sent (the examples are fixed; only a slow machine sends fewer).
STATELESS_SECONDS = 150.0
STATEFUL_SECONDS = 90.0


@contextlib.contextmanager
def serve(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_settings(tmp_path)).start()
    try:
        yield server
    finally:
        server.stop()


def tame(case: Any) -> bool:
    """Applies the rules a schema cannot state, which the document states in words, and says
    whether it removed anything: a cursor is only ever one this API made (hostile cursors:
    test_cursors.py), a live stream never ends by itself (the SSE form: test_sse_*.py), and a
    claim's long poll would only slow the run."""
    removed = False
    if case.query:
        for name in ("cursor", "stream"):
            removed |= case.query.pop(name, None) is not None
    if case.headers:
        # Accept: text/event-stream chooses the live form as `stream=true` does.
        removed |= case.headers.pop("Accept", None) is not None
    if isinstance(case.body, dict):
        wait = case.body.get("wait_seconds")
        if isinstance(wait, int | float) and not isinstance(wait, bool) and 0 < wait <= 30:
            case.body["wait_seconds"] = 0  # a valid wait stays valid; an invalid one invalid
    return removed


def excluded(case: Any, tamed: bool) -> list[Any]:
    """The checks that do not apply to `case`, once `tame` has (`tamed`) or has not removed a
    part of it (which may have been the invalid part).

    HTTP allows any extra header: "headers with unexpected properties" are not invalid data;
    nor is an invalid Authorization, which the fuzzer's own token replaces before it is sent.
    An invalid value of a header the API reads (Last-Event-ID, Idempotency-Key, Job-Lease),
    alone, must still be refused. And a valid value may be refused for what a schema cannot
    state, as documented: `as_of` beyond the job's version is a 400, and so is U+0000 in any
    query parameter, the query token included (a security scheme has no schema to say so), and
    so is what `_said_in_words` finds.
    """
    negative = {
        location
        for location, info in case.meta.components.items()
        if info.mode == GenerationMode.NEGATIVE
    }
    checks = []
    if (negative and tamed) or (
        negative == {ParameterLocation.HEADER} and not _only_read_headers_invalid(case)
    ):
        checks.append(negative_data_rejection)
    query = case.query or {}
    if (
        "as_of" in query
        or "\x00" in str(query.get("access_token"))
        or _said_in_words(case.body)
        or _said_in_words(list(query.values()))
    ):
        checks.append(positive_data_acceptance)
    return checks


_EDGE_YEARS = re.compile(r"(0001|9999)-")


def _said_in_words(value: Any) -> bool:
    """Whether a JSON value holds what the document refuses in words only, for a schema cannot
    say it: an integer past 64 bits as plain digits (JsonValue admits the number, as `1e19`),
    or a date-time in year 1 or 9999, which its offset may take out of years 1-9999 in UTC."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if _EDGE_YEARS.match(item):
                return True
        elif isinstance(item, int) and not isinstance(item, bool):
            if not bodies.MIN_INTEGER <= item <= bodies.MAX_INTEGER:
                return True
    return False


_READ_HEADERS = ("Last-Event-ID", "Idempotency-Key", "Job-Lease")


def _only_read_headers_invalid(case: Any) -> bool:
    """Whether the case's description of its invalid parts names only headers the API reads."""
    description = getattr(case.meta.phase.data, "description", None) or ""
    named = set(re.findall(r"/properties/([A-Za-z-]+)", description))
    if "Last-Event-ID" in named and not str(case.headers.get("Last-Event-ID") or "").strip():
        return False  # sent blank, which is ignored (API.md), as no header at all
    return bool(named) and named <= set(_READ_HEADERS) and "unexpected" not in description


class Enough(Exception):
    """The run has sent its cases, or is past its time bound: no more."""


@dataclasses.dataclass
class Tally:
    """Cases sent, and cases not sent because the run was past its time bound."""

    name: str
    seconds: float
    started: float = dataclasses.field(default_factory=time.monotonic)
    sent: int = 0
    late: int = 0

    def admit(self) -> bool:
        if time.monotonic() - self.started > self.seconds:
            self.late += 1
            return False
        self.sent += 1
        return True

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        text = f"schemathesis {self.name}: {self.sent} cases sent in {elapsed:.0f} s"
        if self.late:
            text += f"; {self.late} not sent, past the {self.seconds:g} s bound"
        return text

    @classmethod
    @contextlib.contextmanager
    def reported(
        cls, capsys: pytest.CaptureFixture[str], name: str, seconds: float
    ) -> Iterator[Tally]:
        """A tally whose summary is printed at the end, even when output is captured."""
        tally = cls(name=name, seconds=seconds)
        try:
            yield tally
        finally:
            with capsys.disabled():
                print(f"\n{tally.summary()}")
