"""An Arc service (brain, tts, events, voice) run by the mesh as a child process."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from arc_stack.server import ManagedServer


class ServiceProcess(ManagedServer):
    """Runs `python -m <module>` and health-checks `GET <health_url>` (200 means healthy)."""

    start_timeout_s = 120.0

    def __init__(
        self,
        name: str,
        module: str,
        health_url: str,
        data_dir: Path,
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(data_dir, log_dir)
        self.name = name
        self.module = module
        self.health_url = health_url
        self._env = dict(env or {})

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    def environment(self) -> Mapping[str, str]:
        return {"PYTHONUNBUFFERED": "1", **self._env}

    async def healthy(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=1.0) as client:
                return (await client.get(self.health_url)).status_code == 200
        except httpx.HTTPError:
            return False
