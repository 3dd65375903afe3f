"""Stateful fuzzing along the links of the served document (schemathesis's state machine):
sequences such as create → claim → progress → cancel → replay → events, each call built from
the answers before it. No 5xx, and every answer documented and matching its schema.

A live server's answers depend on what earlier scenarios left behind, which Hypothesis calls
flaky when it revisits a prefix and sees another path. So, as schemathesis's own runner does, a
failure is recorded when it happens (never found by a replay), each scenario acts as an owner
of its own, and a run that Hypothesis ends as flaky is followed by the next fixed seed.
"""

from __future__ import annotations

import uuid

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from schemathesis.core.failures import FailureGroup
from schemathesis.engine.errors import is_inconsistent_replay

from tests.service.edge import fuzzing

SETTINGS = settings(
    max_examples=25,  # scenarios per seed
    stateful_step_count=20,  # calls at most in each
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
SEEDS = range(1, 100)  # run in turn until STEPS calls were sent
STEPS = 800
# Where a scenario starts. Schemathesis would also start from an operation on a random job id
# (cancel, replay, succeed, ...): a 404 or 409 that the stateless run already sends plenty of.
ROOTS = ("RANDOM__POST_api_v1_jobs", "RANDOM__POST_api_v1_cancel")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with fuzzing.serve(tmp_path_factory.mktemp("fuzz-stateful")) as server:
        yield server


def scenarios(live, tally, found):
    """The state machine over the served document's job, event and worker operations, along
    its own links only (schemathesis's guessed links are off)."""
    served = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    served = served.include(tag=["Jobs", "Events", "Workers"])
    served.config.phases.stateful.inference.algorithms = []
    machine = served.as_state_machine()
    assert set(ROOTS) <= machine.root_rules, machine.root_rules
    elsewhere = dict.fromkeys(machine.root_rules - set(ROOTS))  # None: not a rule

    class Scenarios(machine):
        locals().update(elsewhere)
        root_rules = frozenset(ROOTS)

        def setup(self):
            owner = f"fuzzer-{uuid.uuid4().hex[:8]}"
            self.headers = {"Authorization": f"Bearer {live.token(owner, fuzzing.SCOPES)}"}
            self.tamed = False

        def step(self, input):
            if tally.sent >= STEPS or not tally.admit():
                raise fuzzing.Enough()  # ends the run (past the time bound: the summary says)
            self.tamed = fuzzing.tame(input.case)
            return super().step(input)

        def get_call_kwargs(self, case):
            return {"base_url": live.url, "headers": self.headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                case.validate_response(
                    response,
                    additional_checks=additional_checks,
                    excluded_checks=fuzzing.excluded(case, self.tamed),
                    transport_kwargs=kwargs or None,
                    recorder=self.recorder,
                )
            except FailureGroup as failure:
                found.append(str(failure))

    return Scenarios


def test_sequences_along_the_links_conform_and_never_fail(live, capsys):
    found: list[str] = []
    with fuzzing.Tally.reported(capsys, "stateful", fuzzing.STATEFUL_SECONDS) as tally:
        machine = scenarios(live, tally, found)
        for seed in SEEDS:
            try:
                hypothesis.seed(seed)(machine).run(settings=SETTINGS)
            except fuzzing.Enough:
                break
            except Exception as exc:
                if not (isinstance(exc, Flaky) or is_inconsistent_replay(exc)):
                    raise
    assert not found, "\n\n".join(dict.fromkeys(found))
