"""The validation tools, installed once per session (a no-op when `arc install` did it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arc_stack.deploy_tools import (
    KUSTOMIZE_TARGETS,
    compose_config,
    compose_files,
    install_deploy_tools,
    kubernetes_dir,
    kustomize_build,
    production_placeholders,
)
from arc_stack.paths import state_dir


@pytest.fixture(scope="session")
def deploy_tools() -> None:
    asyncio.run(install_deploy_tools(state_dir() / "logs", say=lambda _line: None))


@pytest.fixture(scope="session")
def production_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return production_placeholders(tmp_path_factory.mktemp("secrets"))


@pytest.fixture(scope="session")
def compose_renders(
    deploy_tools: None, production_env: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The full profile of each environment, rendered once: {"dev": ..., "production": ...}."""
    return {
        "dev": compose_config(compose_files("dev"), "full"),
        "production": compose_config(compose_files("production"), "full", env=production_env),
    }


@pytest.fixture(scope="session")
def kubernetes_renders(deploy_tools: None) -> dict[str, list[dict[str, Any]]]:
    """Every kustomize target rendered once: {"base": [...], "overlays/dev": [...], ...}."""
    return {target: kustomize_build(kubernetes_dir() / target) for target in KUSTOMIZE_TARGETS}
