import pytest
from arc_voice.session_state import SessionState, State

pytestmark = pytest.mark.unit


def now(state: SessionState) -> State:
    return state.state


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_turn_moves_through_the_states() -> None:
    clock = Clock()
    state = SessionState(clock=clock)
    assert now(state) is State.WAITING
    state.agent_state("speaking")  # nobody there yet: still waiting
    assert now(state) is State.WAITING
    state.participant_joined()
    assert now(state) is State.LISTENING
    state.user_state("speaking")
    state.user_state("listening")
    state.agent_state("thinking")
    assert now(state) is State.THINKING
    state.agent_state("speaking")
    assert now(state) is State.SPEAKING
    state.interrupted()
    assert now(state) is State.INTERRUPTED
    state.agent_state("listening")  # stays interrupted while the person talks
    assert now(state) is State.INTERRUPTED
    state.user_state("speaking")
    state.user_state("listening")
    assert now(state) is State.LISTENING
    state.participant_left()
    assert [s for _, s in state.history] == [
        State.WAITING,
        State.LISTENING,
        State.THINKING,
        State.SPEAKING,
        State.INTERRUPTED,
        State.LISTENING,
        State.WAITING,
    ]
