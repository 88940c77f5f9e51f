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

from arc_brain.calculator import calculate
from arc_brain.embedding import Matrix, Vector
from arc_brain.facts import forget_request, statement
from arc_brain.live_data import honest_answer, live_topic
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
    CALCULATE = "calculate"
    LIVE_DATA = "live_data"
    STATEMENT = "statement"
    FORGET = "forget"
    REFUSE = "refuse"
    FALLBACK = "fallback"
    LLM = "llm"


# With a language model, only these routes are taken by example similarity (their answers must
# be exact: a small model asked "what can you do?" invents skills); greetings and everything
# unclear go to the model.
EXACT_ROUTES = frozenset({Route.TIME, Route.DATE, Route.RECALL, Route.SUMMARISE, Route.HELP})


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
        # Said with a hesitation in it, Whisper may hear "I would like to know that, um... time
        # right now" (0.51 from the nearest example above, 0.57 from this one) or "I would
        # like to know that... Time right now." (0.54 from this one, 0.57 from the next; "I
        # don't have time right now" is 0.46 from it).
        "I'd like to know the time",
        "I want to know the time right now",
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

# The commands that carry a payload may be asked for alike: "please ...", "can you ...".
_ASKED = r"^\s*(?:please\s+|can you\s+|could you\s+)?"
_REPEAT = re.compile(
    rf"{_ASKED}(?:repeat after me|say after me|repeat)\s*[:,]?\s+(?P<text>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_REMEMBER = re.compile(
    rf"{_ASKED}(?:remember|note|keep in mind|don't forget)(?:\s+that)?\s*[:,]?\s+"
    r"(?P<fact>.+?)[.!]?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SUMMARISE = re.compile(r"\b(summari[sz]e|summary|recap)\b", re.IGNORECASE)
# Asking for the instructions, or to drop them: the answer is a refusal, never the model's
# attempt (a 135M model recites its system prompt when told to).
_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|prompt|rules|guidelines)\b"
    r"|\b(system|hidden|initial|original)\s+(prompt|instructions?|message)\b"
    r"|\b(reveal|print|show|repeat|tell me|what (are|is|were))\b.{0,30}\byour\s+"
    r"(instructions?|prompt|rules)\b"
    r"|\bother users?\b|\bsomeone else'?s?\b.{0,30}\b(memor|fact|said|told)",
    re.IGNORECASE | re.DOTALL,
)
_UNSAFE = re.compile(
    r"\b(make|build|assemble|cook|synthesi[sz]e)\b.{0,30}\b(bomb|explosives?|meth|nerve gas|"
    r"poison|weapon|gun)s?\b|\bhow (do i|to|can i)\b.{0,30}\b(kill|hurt|poison|stab)\b"
    r"|\b(kill|hurt) (myself|yourself)\b|\bsuicide\b|\bhack into\b|\bsteal\b",
    re.IGNORECASE | re.DOTALL,
)
_WHO_ARE_YOU = re.compile(r"\bwhat(?:'s| is) your name\b|\bwho are you\b", re.IGNORECASE)
# A question asking for something the user told the brain ("what's my name?", "where does
# my sister live?"): memory answers it, never the model, which would invent a plausible fact
# or repeat one the user asked to forget from the session's history.
_RECALL_QUESTION = re.compile(
    r"^\s*(?:(?:and|so|well|hey|ok(?:ay)?|now)\W+)*(?:"
    r"(?:what|who|where|when|which|how old)(?:'s|\s+is|\s+are|\s+was|\s+were)?\s+my\b"
    r"|(?:what|which)\s+\w+\s+(?:is|are|was)\s+my\b"
    r"|(?:where|who|when)\s+(?:do|did|does|am|was)\s+(?:i|my\s+\w+)\b"
    r"|what\s+(?:am|was)\s+i\b"
    r"|what\s+(?:do|does|did)\s+(?:i|my\s+\w+)\s+"
    r"(?:like|love|enjoy|hate|do|work|study|drive|eat|call)\b"
    r"|(?:do|did)\s+you\s+(?:remember|know|recall)\b.*\b(?:my|i)\b"
    r"|(?:what|where)(?:'s|\s+is)\s+the\s+name\s+of\s+my\b"
    r"|what\s+did\s+i\s+(?:tell|say)\b"
    r")",
    re.IGNORECASE,
)
# The recall skill answers with a fact only this close to the question (all-MiniLM-L6-v2
# cosine): "where does my sister live?" is 0.64 from "my sister lives in Lyon" but "where does
# my brother live?" is 0.42 from it, and must get "I don't know" rather than the sister.
RECALL_ANSWER_MIN_SIMILARITY = 0.45
REFUSAL = "I can't help with that. Is there something else I can do for you?"
INJECTION_REFUSAL = (
    "I keep my instructions and what other people tell me to myself. What can I do for you?"
)
SELF_HARM = (
    "I'm sorry you're going through this. Please reach out to someone you trust or a local "
    "crisis line right now; you don't have to face it alone."
)
_SELF_HARM = re.compile(r"\b(kill|hurt) myself\b|\bsuicide\b|\bend my life\b", re.IGNORECASE)

HELP_TEXT = (
    "I can greet you, tell you the time and the date, do sums and unit conversions, repeat "
    "after you, remember facts you tell me and recall them later, and summarise our "
    "conversation. Try saying: remember that my car is blue."
)
# With a language model the brain also chats; what it cannot do is said just as plainly.
HELP_TEXT_WITH_MODEL = (
    "I can chat and answer simple questions, tell you the time and the date, do sums and unit "
    "conversions, remember what you tell me about yourself and recall it later, and "
    "summarise our conversation. I'm offline, so I can't look up news or the weather."
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
class FactToKeep:
    """A fact as the user said it; `slot` is what it is about, when the rules know."""

    content: str
    slot: str | None = None


@dataclass(frozen=True, slots=True)
class Routed:
    route: Route
    payload: str | None = None
    similarity: float | None = None
    # Statements: each fact and its slot; a forget request: the slot its topic maps to.
    facts: tuple[FactToKeep, ...] = ()
    slot: str | None = None


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
        """Routes that need no embedding: commands with a payload, and what must be exact or
        honest whoever answers the rest (arithmetic, live data, facts about the user)."""
        if match := _REPEAT.match(text):
            return Routed(Route.REPEAT, match.group("text").strip())
        if forget := forget_request(text):
            return Routed(Route.FORGET, forget.topic, slot=forget.slot_prefix)
        if match := _REMEMBER.match(text):
            fact = match.group("fact").strip()
            stated = statement(fact)
            return Routed(
                Route.REMEMBER,
                fact,
                facts=(FactToKeep(fact, stated.slot if stated else None),),
            )
        if _SUMMARISE.search(text):
            return Routed(Route.SUMMARISE)
        if _WHO_ARE_YOU.search(text):
            return Routed(Route.GREETING)
        if _SELF_HARM.search(text):
            return Routed(Route.REFUSE, SELF_HARM)
        if _INJECTION.search(text):
            return Routed(Route.REFUSE, INJECTION_REFUSAL)
        if _UNSAFE.search(text):
            return Routed(Route.REFUSE, REFUSAL)
        if calculation := calculate(text):
            return Routed(Route.CALCULATE, calculation.answer)
        if topic := live_topic(text):
            return Routed(Route.LIVE_DATA, honest_answer(topic))
        if _RECALL_QUESTION.match(text):
            return Routed(Route.RECALL)
        if stated_facts := statements(text):
            return Routed(Route.STATEMENT, facts=stated_facts)
        return None

    def nearest(self, embedding: Vector) -> Routed:
        scores = self.example_vectors @ embedding
        best = int(np.argmax(scores))
        return Routed(self.example_routes[best], similarity=float(scores[best]))

    def by_meaning(self, embedding: Vector) -> Routed:
        """The skill whose examples the utterance is nearest to; the fallback below the
        similarity floor. For an utterance no rule routed."""
        nearest = self.nearest(embedding)
        assert nearest.similarity is not None
        if nearest.similarity < self.min_similarity:
            return Routed(Route.FALLBACK, similarity=nearest.similarity)
        return nearest

    def by_meaning_with_llm(self, embedding: Vector, min_similarity: float) -> Routed:
        """The exact skills when the utterance is close to one of their examples; the
        language model for the rest. For an utterance no rule routed."""
        nearest = self.nearest(embedding)
        assert nearest.similarity is not None
        if nearest.route in EXACT_ROUTES and nearest.similarity >= min_similarity:
            return nearest
        return Routed(Route.LLM, similarity=nearest.similarity)

    def route(self, text: str, embedding: Vector) -> Routed:
        return self.by_rule(text) or self.by_meaning(embedding)


_GREETINGS = frozenset(
    {"hi", "hello", "hey", "hi there", "hello there", "hey there", "good morning",
     "good evening", "good afternoon"}
)  # fmt: skip
# Said before a statement without being part of it: "Hi. My name is Dana."
_OPENERS = _GREETINGS | {"okay", "ok", "well", "so", "oh", "yes", "no"}
_FIRST_SENTENCE = re.compile(r"\s*(?P<first>[^.?!,]+)[.?!,]+\s+(?P<rest>\S.*)", re.DOTALL)


def without_greeting(text: str) -> str:
    """The utterance without the greetings said before it: "Hello? What can you do?" asks
    what the agent can do. A person who says "Hello," and goes on after a pause is asked
    about as one turn (the reply to "Hello" was never heard), and by its meaning the whole
    reads as a greeting."""
    while (match := _FIRST_SENTENCE.fullmatch(text)) is not None:
        if match["first"].strip().lower() not in _GREETINGS:
            break
        text = match["rest"]
    return text


_CLAUSE = re.compile(r"\s*(?:[,;.!]\s*|\s+and\s+|\s+but\s+)", re.IGNORECASE)


def statements(text: str) -> tuple[FactToKeep, ...]:
    """The facts of an utterance made only of statements ("My name is Dana and I like
    sailing"); none when any clause is something else, a question above all."""
    if "?" in text:
        return ()
    whole = statement(text)
    if whole is not None:
        return (FactToKeep(whole.content, whole.slot),)
    clauses = [c for c in _CLAUSE.split(text) if c.strip() and c.strip().lower() not in _OPENERS]
    if len(clauses) == 1 and (single := statement(clauses[0])) is not None:
        return (FactToKeep(single.content, single.slot),)
    if len(clauses) < 2:
        return ()
    found = [statement(c) for c in clauses]
    if not all(found):
        return ()
    return tuple(FactToKeep(f.content, f.slot) for f in found if f is not None)


@dataclass
class SkillInput:
    text: str
    routed: Routed
    now: datetime
    history: Sequence[HistoryTurn] = ()
    memories: Sequence[Memory] = ()
    memory_available: bool = True
    with_model: bool = False


@dataclass
class SkillAnswer:
    text: str
    # The facts to store, as the user said them (`remember`, statements).
    facts: tuple[FactToKeep, ...] = ()

    @property
    def fact(self) -> str | None:
        return self.facts[0].content if self.facts else None


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
        return SkillAnswer(HELP_TEXT_WITH_MODEL if skill.with_model else HELP_TEXT)
    if route is Route.TIME:
        return SkillAnswer(f"It's {skill.now.strftime('%-I:%M %p')}, {skill.now.tzname()}.")
    if route is Route.DATE:
        return SkillAnswer(f"Today is {skill.now.strftime('%A, %-d %B %Y')}.")
    if route is Route.REPEAT:
        return SkillAnswer(skill.routed.payload or "")
    if route is Route.REMEMBER:
        fact = (skill.routed.payload or "").strip()
        facts = skill.routed.facts or (FactToKeep(fact),)
        said = second_person(fact)
        if not skill.memory_available:
            return SkillAnswer(
                f"Got it: {said}. My memory store is offline right now, so I'll save it as "
                "soon as it is back.",
                facts=facts,
            )
        return SkillAnswer(f"Okay, I'll remember that {said}.", facts=facts)
    if route is Route.STATEMENT:
        return _acknowledge(skill)
    if route in (Route.CALCULATE, Route.LIVE_DATA, Route.REFUSE):
        return SkillAnswer(skill.routed.payload or REFUSAL)
    if route is Route.RECALL:
        return _recall(skill)
    if route is Route.SUMMARISE:
        return _summarise(skill)
    return SkillAnswer(f"Sorry, I'm not sure how to help with that. {HELP_TEXT}")


_NAME = re.compile(r"(?:name is|name's|call me|i'm|i am)\s+(?P<name>[\w'-]+)", re.IGNORECASE)


def _acknowledge(skill: SkillInput) -> SkillAnswer:
    """A short spoken acknowledgement of facts the user stated in passing; they are kept."""
    facts = skill.routed.facts
    said = [f for f in facts if f.slot != "name"]
    parts: list[str] = []
    for fact in facts:
        if fact.slot == "name" and (match := _NAME.search(fact.content)):
            parts.append(f"Nice to meet you, {match.group('name')}.")
    if said:
        listed = " and ".join(second_person(f.content) for f in said)
        parts.append(f"Got it: {listed}. I'll remember that.")
    if not skill.memory_available:
        parts.append("My memory store is offline right now, so I'll save it when it is back.")
    return SkillAnswer(" ".join(parts) or "Got it.", facts=facts)


def _recall(skill: SkillInput) -> SkillAnswer:
    if not skill.memory_available:
        return SkillAnswer("My memory is unavailable right now, so I can't look that up.")
    facts = [
        m
        for m in skill.memories
        if m.kind == "fact" and m.similarity >= RECALL_ANSWER_MIN_SIMILARITY
    ]
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
