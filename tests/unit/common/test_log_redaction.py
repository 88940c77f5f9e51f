"""What people say stays out of the logs unless a person debugging asks for it
(`ARC_LOG__USER_TEXT`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from arc_common import logging as arc_logging
from arc_common.settings import LogSettings, ServiceSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        arc_logging.configure_logging(LogSettings(), service="test")
        root.handlers[:] = handlers
        root.setLevel(level)


def test_user_text_is_redacted_by_default_and_shown_when_asked(
    restored_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    arc_logging.configure_logging(ServiceSettings().log, service="test")
    redacted = arc_logging.said("my card number is 4111")
    assert "4111" not in redacted and "22 characters" in redacted

    monkeypatch.setenv("ARC_LOG__USER_TEXT", "true")
    arc_logging.configure_logging(ServiceSettings().log, service="test")
    assert arc_logging.said("my card number is 4111") == "my card number is 4111"
