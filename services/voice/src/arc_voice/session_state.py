"""The conversation state a person sees: listening, thinking, speaking, interrupted, waiting.

Fed with the framework's agent and user states; `interrupted` lasts from a barge-in until the
person stops speaking, `waiting` is a session with nobody to talk to yet (or any more).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class State(StrEnum):
    WAITING = "waiting"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    INTERRUPTED = "interrupted"


@dataclass
class SessionState:
    state: State = State.WAITING
    clock: Callable[[], float] = time.monotonic
    history: list[tuple[float, State]] = field(default_factory=list)
    user_speaking: bool = False

    def __post_init__(self) -> None:
        self.history.append((self.clock(), self.state))

    def _set(self, state: State) -> None:
        if state is not self.state:
            self.state = state
            self.history.append((self.clock(), state))

    def participant_joined(self) -> None:
        self._set(State.LISTENING)

    def participant_left(self) -> None:
        self._set(State.WAITING)

    def agent_state(self, agent_state: str) -> None:
        """The framework's agent state: initializing, idle, listening, thinking, speaking."""
        if self.state is State.WAITING:
            return
        if agent_state == "thinking":
            self._set(State.THINKING)
        elif agent_state == "speaking":
            self._set(State.SPEAKING)
        elif agent_state in ("listening", "idle") and self.state is not State.INTERRUPTED:
            self._set(State.LISTENING)

    def user_state(self, user_state: str) -> None:
        """The framework's user state: speaking, listening, away."""
        self.user_speaking = user_state == "speaking"
        if not self.user_speaking and self.state is State.INTERRUPTED:
            self._set(State.LISTENING)

    def interrupted(self) -> None:
        self._set(State.INTERRUPTED)
