"""Registers the fixtures that start real servers once per test session."""

import importlib.util

pytest_plugins = [
    name
    for name in (
        "tests.fixtures.nats",
        "tests.fixtures.postgres",
        "tests.fixtures.pulsar",
        "tests.fixtures.livekit",
        "tests.fixtures.events",
        "tests.fixtures.brain",
        "tests.fixtures.llm",
        "tests.fixtures.tts",
        "tests.fixtures.voice",
        "tests.fixtures.jaeger",
        "tests.fixtures.prometheus",
    )
    if importlib.util.find_spec(name) is not None
]
