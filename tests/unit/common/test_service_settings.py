"""`arc_common.service.load_settings`: a bad `ARC_*` value becomes one line on stderr that
names the variable a person set, its value and the problem, and exit status 2."""

from __future__ import annotations

from typing import Literal

import pytest
from arc_common.service import load_settings
from arc_common.settings import ServiceSettings
from pydantic import BaseModel, Field, model_validator

pytestmark = pytest.mark.unit


class _Group(BaseModel):
    port: int = Field(default=8000, ge=1, le=65535)
    api_key: int = 0
    mode: Literal["fast", "slow"] = "fast"
    names: list[str] = Field(default_factory=list)
    low: int = 0
    high: int = 10

    @model_validator(mode="after")
    def _ordered(self) -> _Group:
        if self.high < self.low:
            raise ValueError("high must be at least low")
        return self


class _DemoSettings(ServiceSettings):
    service_name: str = "demo"
    demo: _Group = _Group()


def _failure(capsys: pytest.CaptureFixture[str]) -> tuple[int | str | None, str]:
    with pytest.raises(SystemExit) as exited:
        load_settings(_DemoSettings)
    captured = capsys.readouterr()
    assert captured.out == ""
    return exited.value.code, captured.err


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ARC_DEMO", "ARC_NATS", "ARC_LOG__JSON"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "ARC_DEMO__PORT",
            "notaport",
            "demo: invalid setting: ARC_DEMO__PORT='notaport': Input should be a valid "
            "integer, unable to parse string as an integer\n",
        ),
        (
            "arc_demo__port",  # variables are read case-insensitively, and named in capitals
            "70000",
            "demo: invalid setting: ARC_DEMO__PORT='70000': Input should be less than or "
            "equal to 65535\n",
        ),
        (
            "ARC_DEMO__MODE",
            "medium",
            "demo: invalid setting: ARC_DEMO__MODE='medium': Input should be 'fast' or 'slow'\n",
        ),
        (
            "ARC_DEMO__NAMES",
            '["ok", 3]',
            "demo: invalid setting: ARC_DEMO__NAMES[1]=3: Input should be a valid string\n",
        ),
        (
            "ARC_DEMO__NAMES",
            "not json",
            "demo: invalid setting: ARC_DEMO__NAMES='not json': not valid JSON (a list, or "
            "an object for a group, is expected)\n",
        ),
        (
            "ARC_DEMO",
            '{"port": "x"}',
            "demo: invalid setting: ARC_DEMO (port)='x': Input should be a valid integer, "
            "unable to parse string as an integer\n",
        ),
        (
            "ARC_DEMO__API_KEY",
            "hunter2",
            "demo: invalid setting: ARC_DEMO__API_KEY='***': Input should be a valid "
            "integer, unable to parse string as an integer\n",
        ),
        (
            "ARC_DEMO__LOW",
            "20",
            "demo: invalid setting: ARC_DEMO__*: high must be at least low\n",
        ),
    ],
)
def test_one_bad_variable_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    line: str,
) -> None:
    monkeypatch.setenv(variable, value)
    code, err = _failure(capsys)
    assert code == 2
    assert err == line


def test_every_bad_variable_is_named_on_the_same_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ARC_DEMO__PORT", "0")
    monkeypatch.setenv("ARC_LOG__JSON", "maybe")
    code, err = _failure(capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("demo: invalid settings: ")
    assert "ARC_DEMO__PORT='0': Input should be greater than or equal to 1" in err
    assert "ARC_LOG__JSON='maybe': Input should be a valid boolean" in err
    assert "; " in err


def test_good_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_DEMO__PORT", "8123")
    monkeypatch.setenv("ARC_DEMO__NAMES", '["a", "b"]')
    settings = load_settings(_DemoSettings)
    assert settings.demo.port == 8123 and settings.demo.names == ["a", "b"]
