"""Questions that need live data the offline assistant cannot have."""

from __future__ import annotations

import re
import time

import pytest
from arc_brain.live_data import LiveTopic, honest_answer, live_topic

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("what's the weather like tomorrow?", LiveTopic.WEATHER),
        ("will it rain today", LiveTopic.WEATHER),
        ("is it going to be sunny in Paris", LiveTopic.WEATHER),
        ("what's the temperature outside", LiveTopic.WEATHER),
        ("what's the temperature outside in celsius", LiveTopic.WEATHER),
        ("weather tomorrow", LiveTopic.WEATHER),
        ("how hot is it in Dubai", LiveTopic.WEATHER),
        ("do I need an umbrella today", LiveTopic.WEATHER),
        ("will there be snow tomorrow", LiveTopic.WEATHER),
        ("what's the forecast", LiveTopic.WEATHER),
        ("tell me about the weather", LiveTopic.WEATHER),
        ("what's in the news", LiveTopic.NEWS),
        ("any headlines today", LiveTopic.NEWS),
        ("what's the latest news", LiveTopic.NEWS),
        ("who won the election", LiveTopic.NEWS),
        ("what's the price of bitcoin", LiveTopic.PRICES),
        ("how much is Apple stock", LiveTopic.PRICES),
        ("what's the euro to dollar exchange rate", LiveTopic.PRICES),
        ("how is the stock market doing", LiveTopic.PRICES),
        ("what's bitcoin at", LiveTopic.PRICES),
        ("how much is 5 dollars in euros", LiveTopic.PRICES),
        ("convert 100 dollars to yen", LiveTopic.PRICES),
        ("how much does an iPhone cost", LiveTopic.PRICES),
        ("who won the game last night", LiveTopic.SPORTS),
        ("what's the score of the Lakers game", LiveTopic.SPORTS),
        ("did the Lakers win last night", LiveTopic.SPORTS),
        ("when is the next Arsenal match", LiveTopic.SPORTS),
        ("football scores", LiveTopic.SPORTS),
        ("how's the traffic on the way to work", LiveTopic.TRAFFIC),
        ("is my train on time", LiveTopic.TRAFFIC),
        ("how long will it take to get to work", LiveTopic.TRAFFIC),
    ],
)
def test_live_questions(text: str, topic: LiveTopic) -> None:
    assert live_topic(text) is topic


@pytest.mark.parametrize(
    "text",
    [
        # Definitions the model can give without live data.
        "what is weather?",
        "what is bitcoin",
        "what is a stock",
        "what is fake news",
        "what is traffic",
        "what is a credit score",
        # Remarks, not questions.
        "I love rainy days",
        "it's raining",
        "the weather is lovely today",
        "good news, I got the job",
        "my sister lives in Lyon",
        # Creative requests and history.
        "tell me a joke about the weather",
        "write a headline for my blog",
        "who won the world cup in 1998",
        # The calculator's, or nobody's.
        "30 degrees celsius in fahrenheit",
        "what is 30 degrees celsius in fahrenheit",
        "how many grams in 2 pounds",
        "convert 10 pounds to kilograms",
        "how much is 100 divided by 8",
        "what time is it",
        "what is the capital of France",
        "what is the temperature of the sun",
        "what's the value of pi",
        "what colour is a traffic light",
        "how do you score in rugby",
        "what time does the shop open",
        "when is my final exam",
        "is it true that hot water freezes faster",
        "is there a hot dog stand nearby",
        "how are you doing",
        "remember that my car is blue",
        "",
        "x" * 10_000,
    ],
)
def test_not_live(text: str) -> None:
    assert live_topic(text) is None


def test_hostile_input_returns_quickly() -> None:
    started = time.perf_counter()
    for text in ("is it " * 40 + "x", "what is " + "a " * 140, "how much does " + "a " * 140):
        live_topic(text)
    assert time.perf_counter() - started < 1.0  # generous: CI cores may be busy


@pytest.mark.parametrize("topic", list(LiveTopic))
def test_honest_answers_are_short_and_speakable(topic: LiveTopic) -> None:
    answer = honest_answer(topic)
    assert "offline" in answer
    assert answer.startswith("I can't ")
    assert not re.search(r"[*/%$#@&_<>\[\]{}]", answer)
    assert 1 <= len(re.findall(r"[.!?](?:\s|$)", answer)) <= 2
    assert len(answer) < 160


def test_honest_answers_name_their_topic() -> None:
    assert honest_answer(LiveTopic.WEATHER) == (
        "I can't check the weather, because I'm running offline with no live data. "
        "I can still tell you the time, or convert temperatures."
    )
    assert "news" in honest_answer(LiveTopic.NEWS)
    assert "prices" in honest_answer(LiveTopic.PRICES)
    assert "scores" in honest_answer(LiveTopic.SPORTS)
    assert "traffic" in honest_answer(LiveTopic.TRAFFIC)
