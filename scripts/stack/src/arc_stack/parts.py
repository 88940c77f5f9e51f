"""The parts of the local mesh, in start order."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from arc_stack.nats import NatsServer
from arc_stack.postgres import PostgresServer
from arc_stack.server import ManagedServer
from arc_stack.service import ServiceProcess
from arc_stack.settings import StackSettings

PART_NAMES = ("nats", "postgres", "pulsar", "livekit", "llm")


# The brain's LLM settings (`arc_brain.settings.LlmSettings` fields) for the local model, as
# `make run` sets them; the test fixture and the benchmarks take them from here.
LOCAL_LLM: dict[str, str] = {
    "model": "smollm2",
    # A small model wanders off when it talks long, and spoken answers are short anyway.
    "max_tokens": "120",
    # Told to answer in one or two sentences, it still talks for a minute at times.
    "max_sentences": "3",
    # Greedy: sampled, its first word now and then slips into French, and the rest of the
    # session follows it there (measured with the eval, tests/eval).
    "temperature": "0",
    # Each answer from the question alone: with earlier answers in its prompt, one odd answer
    # became the template of every later one (voice benchmark, docs/brain.md).
    "history_turns": "0",
}


def local_llm_env(base_url: str) -> dict[str, str]:
    """`LOCAL_LLM` and the server's URL as the brain's `ARC_BRAIN__LLM__*` variables."""
    return {
        f"ARC_BRAIN__LLM__{name.upper()}": value
        for name, value in {"base_url": base_url, **LOCAL_LLM}.items()
    }


def build_parts(settings: StackSettings, state: Path) -> list[ManagedServer]:
    data, logs = state / "data", state / "logs"
    parts: list[ManagedServer] = [
        NatsServer(
            data / "nats", logs, port=settings.nats_port, monitor_port=settings.nats_monitor_port
        ),
        PostgresServer(
            data / "postgres", logs, port=settings.postgres_port, database=settings.postgres_db
        ),
    ]
    # Imported here so a missing JDK or Go toolchain only matters when the part is wanted.
    from arc_stack.pulsar import PulsarServer

    parts.append(
        PulsarServer(
            data / "pulsar",
            logs,
            broker_port=settings.pulsar_port,
            web_port=settings.pulsar_admin_port,
            bookie_port=settings.pulsar_bookie_port,
        )
    )
    from arc_stack.livekit import LiveKitServer

    parts.append(
        LiveKitServer(
            data / "livekit",
            logs,
            port=settings.livekit_port,
            rtc_tcp_port=settings.livekit_rtc_tcp_port,
            udp_port=settings.livekit_udp_port,
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret,
        )
    )
    from arc_stack.llm import LlamaServer

    parts.append(
        LlamaServer(
            data / "llm",
            logs,
            port=settings.llm_port,
            model_path=settings.llm_model_path,
            requantize=settings.llm_requantize,
            threads=settings.llm_threads,
            slots=settings.llm_slots,
            context_per_slot=settings.llm_context_per_slot,
        )
    )
    parts.extend(_services(settings, data, logs))
    return [p for p in parts if p.name not in settings.skipped]


# The Arc services, after the servers they depend on; each serves GET /healthz on its port.
SERVICES: tuple[tuple[str, str, str], ...] = (
    ("brain", "arc_brain", "brain_http_port"),
    ("tts", "arc_tts", "tts_http_port"),
    ("events", "arc_events", "events_http_port"),
    ("voice", "arc_voice", "voice_http_port"),
)


def _services(settings: StackSettings, data: Path, logs: Path) -> list[ManagedServer]:
    env = {
        "ARC_NATS__URL": f"nats://127.0.0.1:{settings.nats_port}",
        "ARC_POSTGRES__DSN": (
            f"postgresql://postgres@127.0.0.1:{settings.postgres_port}/{settings.postgres_db}"
        ),
        "ARC_PULSAR__SERVICE_URL": f"pulsar://127.0.0.1:{settings.pulsar_port}",
        "ARC_PULSAR__ADMIN_URL": f"http://127.0.0.1:{settings.pulsar_admin_port}",
        "ARC_LIVEKIT__URL": f"ws://127.0.0.1:{settings.livekit_port}",
        "ARC_LIVEKIT__API_KEY": settings.livekit_api_key,
        "ARC_LIVEKIT__API_SECRET": settings.livekit_api_secret,
    }
    # A configured endpoint in the caller's environment (OpenAI, vLLM, Ollama) takes
    # precedence over the local model.
    if "llm" not in settings.skipped and not os.environ.get("ARC_BRAIN__LLM__BASE_URL"):
        env |= local_llm_env(f"http://127.0.0.1:{settings.llm_port}/v1")
    services: list[ManagedServer] = []
    for name, module, port_field in SERVICES:
        # A service joins the mesh once its package has an entry point.
        if (
            importlib.util.find_spec(module) is None
            or importlib.util.find_spec(f"{module}.__main__") is None
        ):
            continue
        port = getattr(settings, port_field)
        services.append(
            ServiceProcess(
                name,
                module,
                f"http://127.0.0.1:{port}/healthz",
                data / name,
                logs,
                env={**env, f"ARC_{name.upper()}__HTTP_PORT": str(port)},
            )
        )
    return services
