"""An Arc service (brain, tts, events, voice) run by the mesh as a child process."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from arc_stack.server import ManagedServer, http_ok


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
        return await http_ok(self.health_url)
