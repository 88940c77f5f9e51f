"""The built-in skills: what the brain can do offline, without any LLM.

Routing is two-staged: a few rules catch the commands that carry a payload ("repeat after me
…", "remember that …"), then the utterance's embedding is compared with example utterances of
each skill; below a similarity floor the fallback explains what the brain can do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np

from arc_brain.embedding import Matrix, Vector
from arc_brain.memory import HistoryTurn, Memory


class Route(StrEnum):
    GREETING = "greeting"
    HELP = "help"
    TIME = "time"
    DATE = "date"
    REPEAT = "repeat"
    REMEMBER = "remember"
    RECALL = "recall"
    SUMMARISE = "summarise"
    FALLBACK = "fallback"
    LLM = "llm"


EXAMPLES: dict[Route, tuple[str, ...]] = {
    Route.GREETING: (
        "hello",
        "hi there",
        "hey",
        "good morning",
        "good evening",
        "hello, how are you?",
    ),
    Route.HELP: (
        "what can you do?",
        "help",
        "how can you help me?",
        "what are your skills?",
        "what do you know how to do?",
    ),
    Route.TIME: (
        "what time is it?",
        "what's the time?",
        "tell me the time",
        "do you know what time it is?",
    ),
    Route.DATE: (
        "what's the date today?",
        "what day is it?",
        "what is today's date?",
        "which day of the week is it?",
    ),
    Route.RECALL: (
        "what colour is my car?",
        "what is my dog's name?",
        "where do I live?",
        "do you remember my favourite food?",
        "what did I tell you about my sister?",
        "when is my birthday?",
    ),
    Route.SUMMARISE: (
        "summarise our conversation",
        "can you summarize what we talked about?",
        "give me a recap of the conversation so far",
        "what have we discussed?",
    ),
}

_REPEAT = re.compile(
    r"^\s*(?:please\s+|can you\s+|could you\s+)?(?:repeat after me|say after me|repeat)"
    r"\s*[:,]?\s+(?P<text>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_REMEMBER = re.compile(
    r"^\s*(?:please\s+|can you\s+|could you\s+)?(?:remember|note|keep in mind|don't forget)"
    r"(?:\s+that)?\s*[:,]?\s+(?P<fact>.+?)[.!]?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SUMMARISE = re.compile(r"\b(summari[sz]e|summary|recap)\b", re.IGNORECASE)

HELP_TEXT = (
    "I can greet you, tell you the time and the date, repeat after you, remember facts you "
    "tell me and recall them later, and summarise our conversation. Try saying: remember "
    "that my car is blue."
)

_PERSPECTIVE = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "am": "are",
    "i'm": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "we": "you",
    "our": "your",
    "us": "you",
}
_WORD = re.compile(r"[A-Za-z']+")


def second_person(text: str) -> str:
    """A fact as the user said it ("my car is blue"), as the brain says it back ("your car is
    blue")."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        return _PERSPECTIVE.get(word.lower(), word)

    return _WORD.sub(swap, text)


@dataclass(frozen=True, slots=True)
class Routed:
    route: Route
    payload: str | None = None
    similarity: float | None = None


@dataclass
class Router:
    """Rules first, then the nearest example utterance by cosine similarity."""

    example_routes: list[Route]
    example_vectors: Matrix
    min_similarity: float = 0.55

    @classmethod
    def from_examples(
        cls, vectors: Matrix, examples: dict[Route, tuple[str, ...]] = EXAMPLES, **kw: float
    ) -> Router:
        routes = [route for route, texts in examples.items() for _ in texts]
        return cls(example_routes=routes, example_vectors=vectors, **kw)

    @staticmethod
    def example_texts(examples: dict[Route, tuple[str, ...]] = EXAMPLES) -> list[str]:
        return [text for texts in examples.values() for text in texts]

    def by_rule(self, text: str) -> Routed | None:
        """Routes that need no embedding: commands with a payload."""
        if match := _REPEAT.match(text):
            return Routed(Route.REPEAT, match.group("text").strip())
        if match := _REMEMBER.match(text):
            return Routed(Route.REMEMBER, match.group("fact").strip())
        if _SUMMARISE.search(text):
            return Routed(Route.SUMMARISE)
        return None

    def route(self, text: str, embedding: Vector) -> Routed:
        if routed := self.by_rule(text):
            return routed
        scores = self.example_vectors @ embedding
        best = int(np.argmax(scores))
        similarity = float(scores[best])
        if similarity < self.min_similarity:
            return Routed(Route.FALLBACK, similarity=similarity)
        return Routed(self.example_routes[best], similarity=similarity)


@dataclass
class SkillInput:
    text: str
    routed: Routed
    now: datetime
    history: Sequence[HistoryTurn] = ()
    memories: Sequence[Memory] = ()
    memory_available: bool = True


@dataclass
class SkillAnswer:
    text: str
    fact: str | None = None  # for `remember`: the fact to store, as the user said it


def _describe(user_text: str) -> str:
    """One history turn, said back in the second person for a summary."""
    if match := _REMEMBER.match(user_text):
        return f"asked me to remember that {second_person(match.group('fact').strip())}"
    if match := _REPEAT.match(user_text):
        return f'had me repeat "{match.group("text").strip()}"'
    said = second_person(user_text.strip().rstrip(".!"))
    return f'asked "{said}"' if said.endswith("?") else f'said "{said}"'


def answer(skill: SkillInput) -> SkillAnswer:
    """The built-in answer for a routed turn. Pure: everything it needs is in `skill`."""
    route = skill.routed.route
    if route is Route.GREETING:
        return SkillAnswer("Hello! I'm Arc. How can I help you today?")
    if route is Route.HELP:
        return SkillAnswer(HELP_TEXT)
    if route is Route.TIME:
        return SkillAnswer(f"It's {skill.now.strftime('%-I:%M %p')}, {skill.now.tzname()}.")
    if route is Route.DATE:
        return SkillAnswer(f"Today is {skill.now.strftime('%A, %-d %B %Y')}.")
    if route is Route.REPEAT:
        return SkillAnswer(skill.routed.payload or "")
    if route is Route.REMEMBER:
        fact = (skill.routed.payload or "").strip()
        said = second_person(fact)
        if not skill.memory_available:
            return SkillAnswer(
                f"Got it: {said}. My memory store is offline right now, so I'll save it as "
                "soon as it is back.",
                fact=fact,
            )
        return SkillAnswer(f"Okay, I'll remember that {said}.", fact=fact)
    if route is Route.RECALL:
        return _recall(skill)
    if route is Route.SUMMARISE:
        return _summarise(skill)
    return SkillAnswer(f"Sorry, I'm not sure how to help with that. {HELP_TEXT}")


def _recall(skill: SkillInput) -> SkillAnswer:
    if not skill.memory_available:
        return SkillAnswer("My memory is unavailable right now, so I can't look that up.")
    facts = [m for m in skill.memories if m.kind == "fact"]
    if not facts:
        return SkillAnswer(
            "I don't know that yet. You can tell me, for example: remember that my car is blue."
        )
    best = facts[0].similarity
    # Of the facts about the same thing, the latest is what the user believes now.
    close = [m for m in facts if m.similarity >= best - 0.05]
    latest = max(close, key=lambda m: m.created_at)
    return SkillAnswer(f"You told me that {second_person(latest.content)}.")


def _summarise(skill: SkillInput) -> SkillAnswer:
    turns = [t for t in skill.history if t.user_text]
    if not turns:
        return SkillAnswer("We've only just started talking, so there's nothing to summarise.")
    described = [_describe(t.user_text) for t in turns[-6:]]
    if len(described) == 1:
        listed = described[0]
    else:
        listed = ", ".join(described[:-1]) + ", and " + described[-1]
    count = len(turns)
    exchanges = "one exchange" if count == 1 else f"{count} exchanges"
    return SkillAnswer(f"So far we've had {exchanges}. You {listed}.")
