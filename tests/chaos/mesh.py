"""The mesh under chaos: every part `make run` starts (two brains, two TTS workers, two voice
workers under LiveKit dispatch, the events service, NATS, Postgres, Pulsar, LiveKit), on
private ports and a private state directory, kept up by the real supervisor, which restarts a
part that dies as it does under `make run`. The tracing and metrics backends and the local
LLM are left out: they are not on a turn's path, and the brain's skills answer the questions
asked here."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
from arc_stack.parts import build_parts
from arc_stack.paths import state_dir
from arc_stack.postgres import PostgresServer
from arc_stack.secrets import local_api_key
from arc_stack.server import ManagedServer, free_port
from arc_stack.service import ServiceProcess
from arc_stack.settings import StackSettings
from arc_stack.supervisor import Supervisor
from arc_voice.settings import DispatchSettings

SKIPPED = "jaeger,prometheus,nats-metrics,llm"


STEP = 100


def _free_pair(step: int, taken: set[int]) -> int:
    """A free port whose replica's port (`step` above) is free too; both then `taken`."""
    for _ in range(100):
        port = free_port()
        twin = port + step
        if twin in taken or port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", twin))
            except OSError:
                continue
        taken.update((port, twin))
        return port
    raise RuntimeError("no free pair of ports for a service and its replica")


def _settings() -> StackSettings:
    ports = {
        name: free_port()
        for name in (
            "nats_port",
            "nats_monitor_port",
            "postgres_port",
            "pulsar_port",
            "pulsar_admin_port",
            "pulsar_bookie_port",
            "livekit_port",
            "livekit_rtc_tcp_port",
            "livekit_udp_port",
            "livekit_prometheus_port",
            "supervisor_metrics_port",
        )
    }
    # A second replica listens `replica_port_step` above its first.
    taken = set(ports.values())
    services = {
        name: _free_pair(STEP, taken)
        for name in ("brain_http_port", "tts_http_port", "voice_http_port", "events_http_port")
    }
    return StackSettings.model_validate(
        {
            **ports,
            **services,
            "stack_skip": SKIPPED,
            "brain_replicas": 2,
            "tts_replicas": 2,
            "voice_replicas": 2,
            "replica_port_step": STEP,
        }
    )


class ChaosMesh:
    """The parts, the supervisor keeping them up, and what a test needs to reach them."""

    def __init__(self, state: Path, log: list[str]) -> None:
        self.state = state
        state.mkdir(parents=True, exist_ok=True)
        self.settings = _settings()
        self.parts = build_parts(self.settings, state)
        self.log = log
        self.supervisor = Supervisor(
            self.parts,
            state,
            say=self._say,
            restart_policy=self.settings.restart_policy,
        )
        self._stop_watch = asyncio.Event()
        self._watching: asyncio.Task[str | None] | None = None
        self.api_key = local_api_key(state)
        self.livekit_key, self.livekit_secret = self.settings.livekit_keys(state)
        self.agent_name = DispatchSettings().agent_name

    def _say(self, line: str) -> None:
        self.log.append(line)
        print(line, flush=True)

    def part(self, name: str) -> ManagedServer:
        [found] = [p for p in self.parts if p.name == name]
        return found

    def replicas(self, service: str) -> list[ManagedServer]:
        return [p for p in self.parts if p.name == service or p.name.startswith(f"{service}-")]

    @property
    def livekit_url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.livekit_port}"

    @property
    def dsn(self) -> str:
        postgres = self.part("postgres")
        assert isinstance(postgres, PostgresServer)
        return postgres.dsn()

    def http_url(self, part: ManagedServer) -> str:
        assert isinstance(part, ServiceProcess), f"{part.name} is not a service"
        return part.health_url.removesuffix("/healthz")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    # -- the supervisor's watch, paused while a test holds a part down on purpose ------------

    def watch(self) -> None:
        self._stop_watch = asyncio.Event()
        self._watching = asyncio.create_task(
            self.supervisor.watch(self._stop_watch), name="chaos:supervisor.watch"
        )

    async def unwatch(self) -> None:
        if self._watching is None:
            return
        self._stop_watch.set()
        gave_up = await self._watching
        self._watching = None
        assert gave_up is None, f"the supervisor gave up on {gave_up}"

    async def wait_up(self, within_s: float = 120.0) -> None:
        """Every part running and healthy again (after the supervisor's restarts)."""
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            down = [p.name for p in self.parts if not (p.running and await p.healthy())]
            if not down:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"parts still down after {within_s:.0f} s: {down}")
            await asyncio.sleep(0.5)

    @contextlib.asynccontextmanager
    async def held_down(
        self, name: str, how: signal.Signals = signal.SIGTERM
    ) -> AsyncIterator[None]:
        """`name` stopped (`how`: as an operator or a host would) until the block ends; the
        supervisor does not restart it meanwhile, and starts it again after."""
        await self.unwatch()
        part = self.part(name)
        try:
            if part.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(part.pid, how)
            await part.stop()
            yield
        finally:
            await part.start()
            self.watch()

    def kill(self, part: ManagedServer) -> None:
        """SIGKILL, as a crash or the OOM killer would; the supervisor restarts it."""
        assert part.pid is not None, f"{part.name} is not running"
        os.killpg(part.pid, signal.SIGKILL)

    @contextlib.contextmanager
    def frozen(self, parts: list[ManagedServer]) -> Iterator[None]:
        """The processes stopped (SIGSTOP) and continued: a stall, not a death."""
        for part in parts:
            assert part.pid is not None
            os.killpg(part.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for part in parts:
                if part.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(part.pid, signal.SIGCONT)

    def log_count(self, service: str, needle: str) -> int:
        """Lines holding `needle` in the logs of every replica of `service`."""
        count = 0
        for part in self.replicas(service):
            with contextlib.suppress(OSError):
                count += part.log_path.read_text(errors="replace").count(needle)
        return count

    async def serving_voice(self, room: str) -> ManagedServer | None:
        async with httpx.AsyncClient(timeout=10.0, headers=self.headers) as client:
            for part in self.replicas("voice"):
                if not part.running:
                    continue
                response = await client.get(f"{self.http_url(part)}/rooms")
                if response.status_code == 200 and response.json()["rooms"].get(room):
                    return part
        return None


@contextlib.asynccontextmanager
async def chaos_mesh() -> AsyncIterator[ChaosMesh]:
    # Under .arc/ rather than pytest's tmp dir: Postgres runs as a system user that cannot
    # traverse pytest's private (0700) temporary directories.
    state = state_dir() / "test-runs" / f"chaos-{uuid.uuid4().hex[:8]}"
    mesh = ChaosMesh(state, [])
    try:
        await mesh.supervisor.install()
        await mesh.supervisor.start()
        mesh.watch()
        yield mesh
    finally:
        with contextlib.suppress(Exception):
            await mesh.unwatch()
        await mesh.supervisor.stop()
        # The parts' logs outlive the run, for reading what a fault did.
        kept = state_dir() / "test-runs" / "chaos-logs"
        shutil.rmtree(kept, ignore_errors=True)
        with contextlib.suppress(OSError):
            shutil.copytree(state / "logs", kept)
            print(f"the parts' logs: {kept}", flush=True)
        shutil.rmtree(state, ignore_errors=True)
