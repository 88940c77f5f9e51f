"""The events service's settings, from the environment as `python -m arc_events` reads them."""

from __future__ import annotations

import pytest
from arc_events.__main__ import _parse_roles
from arc_events.service import sinks_for
from arc_events.settings import EventsSettings, Role
from pydantic import ValidationError

pytestmark = pytest.mark.unit


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ARC_EVENTS__HTTP_PORT", "ARC_PULSAR__SERVICE_URL", "ARC_EVENTS__ROLES"):
        monkeypatch.delenv(name, raising=False)
    settings = EventsSettings()
    assert settings.events.http_port == 8084
    assert settings.pulsar.service_url == "pulsar://127.0.0.1:6650"
    assert settings.pulsar.admin_url == "http://127.0.0.1:8080"
    assert settings.events.roles == [Role.RELAY, Role.ANALYTICS, Role.AUDIT]
    assert settings.events.topic_suffix == ""


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_EVENTS__HTTP_PORT", "9999")
    monkeypatch.setenv("ARC_EVENTS__ROLES", '["audit"]')
    monkeypatch.setenv("ARC_EVENTS__RELAY_BATCH_SIZE", "500")
    monkeypatch.setenv("ARC_PULSAR__SERVICE_URL", "pulsar://broker:6650")
    settings = EventsSettings()
    assert settings.events.http_port == 9999
    assert settings.events.roles == [Role.AUDIT]
    assert settings.events.relay_batch_size == 500
    assert settings.pulsar.service_url == "pulsar://broker:6650"


@pytest.mark.parametrize(("batch", "pending"), [(5000, 10_000), (700, 1400), (100, 1000)])
def test_a_relay_producer_has_room_for_two_batches(
    monkeypatch: pytest.MonkeyPatch, batch: int, pending: int
) -> None:
    """The service and the bench read one value: two batches' worth, at least 1000."""
    monkeypatch.setenv("ARC_EVENTS__RELAY_BATCH_SIZE", str(batch))
    assert EventsSettings().events.relay_max_pending == pending


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ARC_EVENTS__RELAY_BATCH_SIZE", "0"),
        ("ARC_EVENTS__HTTP_PORT", "70000"),
        ("ARC_EVENTS__ROLES", '["mailer"]'),
        ("ARC_EVENTS__TOPIC_SUFFIX", "a/b"),
    ],
)
def test_bad_settings_fail_at_start_up(monkeypatch: pytest.MonkeyPatch, name: str,
                                       value: str) -> None:  # fmt: skip
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        EventsSettings()


def test_command_line_roles() -> None:
    assert _parse_roles([]) is None
    assert _parse_roles(["relay", "audit"]) == [Role.RELAY, Role.AUDIT]
    with pytest.raises(SystemExit):
        _parse_roles(["mailer"])
    assert [s.name for s in sinks_for([Role.RELAY, Role.AUDIT, Role.ANALYTICS, Role.AUDIT])] == [
        "audit",
        "analytics",
    ]
