"""Which service processes `make run` starts: the brain and the TTS twice by default, every
process on a port of its own."""

from __future__ import annotations

import pytest
from arc_stack.parts import service_instances
from arc_stack.settings import StackSettings

pytestmark = pytest.mark.unit


def test_brain_tts_and_voice_run_two_replicas_by_default() -> None:
    parts = [i.part for i in service_instances(StackSettings())]
    assert parts == ["brain", "brain-2", "tts", "tts-2", "events", "voice", "voice-2"]


def test_every_process_and_server_has_its_own_port() -> None:
    settings = StackSettings(brain_replicas=3, tts_replicas=4, voice_replicas=2)
    services = [i.port for i in service_instances(settings)]
    servers = [
        value
        for name, value in settings.model_dump().items()
        if name.endswith("_port") and not name.endswith(("_http_port",))
    ]
    assert len(services) == 3 + 4 + 1 + 2
    assert len(set(services)) == len(services)
    assert not set(services) & set(servers), (services, servers)
    assert {i.service for i in service_instances(settings) if i.part == "tts-4"} == {"tts"}


def test_one_replica_is_the_service_alone() -> None:
    settings = StackSettings(brain_replicas=1, tts_replicas=1, voice_replicas=1)
    assert [i.part for i in service_instances(settings)] == ["brain", "tts", "events", "voice"]
