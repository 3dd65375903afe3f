from __future__ import annotations

import itertools

import pytest

from domain import errors, states
from domain.states import JobState

# Written out from API.md rather than read from `states.TRANSITIONS`, so the test
# checks the table instead of restating it.
ALLOWED = {
    (JobState.PENDING, JobState.RUNNING),
    (JobState.PENDING, JobState.CANCELLED),
    (JobState.RUNNING, JobState.PENDING),  # a failed attempt is retried
    (JobState.RUNNING, JobState.SUCCEEDED),
    (JobState.RUNNING, JobState.FAILED),
    (JobState.RUNNING, JobState.CANCELLED),
}
TERMINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

EVERY_PAIR = [
    pytest.param(src, dst, (src, dst) in ALLOWED, id=f"{src}->{dst}")
    for src, dst in itertools.product(JobState, repeat=2)
]


def test_states_are_the_api_statuses() -> None:
    assert [s.value for s in JobState] == [
        "pending",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ]


def test_table_has_a_row_for_every_state() -> None:
    assert set(states.TRANSITIONS) == set(JobState)


@pytest.mark.parametrize(("src", "dst", "allowed"), EVERY_PAIR)
def test_transition_table(src: JobState, dst: JobState, allowed: bool) -> None:
    assert (dst in states.TRANSITIONS[src]) is allowed
    if allowed:
        states.check_transition("job-1", src, dst, "moved")
    else:
        with pytest.raises(errors.InvalidTransition) as caught:
            states.check_transition("job-1", src, dst, "moved")
        assert caught.value.job_id == "job-1"
        assert caught.value.state == src.value
        assert caught.value.action == "moved"


@pytest.mark.parametrize("state", TERMINAL, ids=str)
def test_terminal_state_has_no_way_out(state: JobState) -> None:
    assert state.is_terminal
    assert states.TRANSITIONS[state] == frozenset()
    for dst in JobState:
        with pytest.raises(errors.InvalidTransition):
            states.check_transition("job-1", state, dst, "moved")


@pytest.mark.parametrize("state", [JobState.PENDING, JobState.RUNNING], ids=str)
def test_active_state_is_not_terminal(state: JobState) -> None:
    assert not state.is_terminal
    assert states.TRANSITIONS[state]


def test_invalid_transition_message_names_state_and_action() -> None:
    with pytest.raises(errors.InvalidTransition, match=r"^A succeeded job cannot be started\.$"):
        states.check_transition("job-1", JobState.SUCCEEDED, JobState.RUNNING, "started")


def test_invalid_transition_is_a_domain_error() -> None:
    assert issubclass(errors.InvalidTransition, errors.DomainError)
