"""Config drift fails CI: every ARC_* variable a compose or Kubernetes file sets is a setting
of the service it is set for, every value parses, and everything a deployment must set is
set (required settings, and every setting whose default points at the local mesh on
127.0.0.1, which no container can reach)."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from arc_stack.deploy_tools import docker_dir

from tests.deployment.settings_env import (
    SETTINGS,
    as_setting,
    compose_environments,
    compose_service_settings,
    kubernetes_containers,
    settings_variables,
)

pytestmark = pytest.mark.integration

# Stands in for a secret's value (API keys must be at least 16 characters).
PLACEHOLDER = "placeholder-secret-0123456789"


def _must_set(service: str) -> set[str]:
    """Settings a deployment of `service` has to set."""
    return {
        name
        for name, setting in settings_variables(SETTINGS[service]).items()
        if not setting.group and (setting.required or "127.0.0.1" in setting.default_text)
    }


def _problems(service: str, env: dict[str, str], where: str) -> list[str]:
    known = settings_variables(SETTINGS[service])
    problems = []
    set_here = set()
    for variable in env:
        if not variable.startswith("ARC_"):
            continue
        setting = as_setting(variable, known)
        if setting not in known:
            problems.append(f"{where}: {variable} is not a setting of {service}")
        set_here.add(setting)
    problems += [
        f"{where}: {name} is not set (required, or its default is the local mesh)"
        for name in sorted(_must_set(service) - set_here)
    ]
    return problems


def _parses(service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings class accepts the values (secrets stand in as placeholders)."""
    for name in [k for k in os.environ if k.upper().startswith("ARC_")]:
        monkeypatch.delenv(name)
    known = settings_variables(SETTINGS[service])
    for variable, value in env.items():
        if variable.startswith("ARC_"):
            secret = value == "<secret>" or as_setting(variable, known) != variable
            monkeypatch.setenv(as_setting(variable, known), PLACEHOLDER if secret else value)
    SETTINGS[service]()


@pytest.mark.parametrize("environment", ["dev", "production"])
def test_compose_sets_only_real_settings_and_all_it_must(
    compose_renders: dict[str, dict[str, Any]],
    environment: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environments = compose_environments(compose_renders[environment])
    assert {"brain", "tts", "tts-2", "events", "voice", "migrate"} <= set(environments)
    problems = []
    for name, env in environments.items():
        service = compose_service_settings(name)
        assert service is not None
        if name == "migrate":  # reads only the Postgres settings
            assert {"ARC_POSTGRES__DSN", "PGPASSWORD_FILE"} <= set(env)
            continue
        problems += _problems(service, env, f"compose {environment} {name}")
        _parses(service, env, monkeypatch)
    assert problems == []


@pytest.mark.parametrize("target", ["base", "overlays/dev", "overlays/prod"])
def test_kubernetes_sets_only_real_settings_and_all_it_must(
    kubernetes_renders: dict[str, list[dict[str, Any]]],
    target: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    containers = kubernetes_containers(kubernetes_renders[target])
    assert {c.workload for c in containers} == {"arc-brain", "arc-tts", "arc-events", "arc-voice"}
    problems = []
    for c in containers:
        if c.name == "migrate":
            assert {"ARC_POSTGRES__DSN", "PGPASSWORD"} <= set(c.env)
            continue
        problems += _problems(c.service, c.env, f"{target} {c.workload}/{c.name}")
        _parses(c.service, c.env, monkeypatch)
    assert problems == []


def test_a_misspelt_or_unset_setting_is_reported() -> None:
    """The check itself: a typo and a missing address are both named."""
    env = {"ARC_TTS__HTTP_PROT": "8082", "ARC_TTS__HTTP_HOST": "0.0.0.0"}
    problems = _problems("tts", env, "here")
    assert "here: ARC_TTS__HTTP_PROT is not a setting of tts" in problems
    assert any("ARC_NATS__URL is not set" in p for p in problems)


def test_secret_files_follow_the_entry_points_rule() -> None:
    """The settings whose own names end in _FILE are exactly those the image's entry point
    leaves alone; any other NAME_FILE becomes NAME."""
    entrypoint = (docker_dir() / "entrypoint.sh").read_text()
    match = re.search(r'^KEEP_FILE_SETTINGS="([^"]*)"', entrypoint, re.MULTILINE)
    assert match is not None
    kept = set(match.group(1).split())
    file_settings = {
        name
        for settings_type in SETTINGS.values()
        for name in settings_variables(settings_type)
        if name.endswith("_FILE")
    }
    assert kept == file_settings
