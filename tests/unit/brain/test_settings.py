"""The brain's settings: built from ARC_* variables, nested with `__`, and a clear error for
a bad value."""

from __future__ import annotations

import pytest
from arc_brain.__main__ import main
from arc_brain.settings import BrainSettings

pytestmark = pytest.mark.unit


def test_defaults_and_nested_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_BRAIN__LLM__BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("ARC_BRAIN__LLM__API_KEY", "sk-secret")
    monkeypatch.setenv("ARC_POSTGRES__DSN", "postgresql://x@127.0.0.1:1/y")
    settings = BrainSettings()
    assert settings.brain.http_port == 8081 and settings.brain.http_host == "127.0.0.1"
    assert settings.brain.llm.base_url == "http://127.0.0.1:11434/v1"
    assert settings.brain.llm.api_key is not None
    assert "sk-secret" not in repr(settings)  # secrets stay out of logs
    assert settings.postgres.dsn.get_secret_value() == "postgresql://x@127.0.0.1:1/y"


def test_bad_setting_exits_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ARC_BRAIN__HTTP_PORT", "eighty")
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "brain: invalid setting: ARC_BRAIN__HTTP_PORT='eighty': Input should be a valid "
        "integer, unable to parse string as an integer\n"
    )
