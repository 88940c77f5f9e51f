"""The parts of the local mesh, in start order."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from arc_stack.nats import NatsServer
from arc_stack.nats_auth import local_passwords, permission_matrix, server_config
from arc_stack.postgres import PostgresServer
from arc_stack.secrets import local_api_key
from arc_stack.server import ManagedServer
from arc_stack.service import ServiceProcess
from arc_stack.settings import StackSettings

PART_NAMES = (
    "nats",
    "nats-metrics",
    "postgres",
    "pulsar",
    "livekit",
    "llm",
    "jaeger",
    "prometheus",
)


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


def _nats_passwords(state: Path) -> dict[str, str]:
    return local_passwords(state, list(permission_matrix()))


def build_parts(settings: StackSettings, state: Path) -> list[ManagedServer]:
    data, logs = state / "data", state / "logs"
    livekit_key, livekit_secret = settings.livekit_keys(state)
    parts: list[ManagedServer] = [
        NatsServer(
            data / "nats",
            logs,
            port=settings.nats_port,
            monitor_port=settings.nats_monitor_port,
            # No anonymous clients: each service connects as its own user (arc_stack.nats_auth).
            authorization=server_config(_nats_passwords(state), permission_matrix()),
        ),
        # nats-server's JSON monitoring as Prometheus metrics (arc_stack.nats_metrics).
        ServiceProcess(
            "nats-metrics",
            "arc_stack.nats_metrics",
            f"http://127.0.0.1:{settings.nats_metrics_port}/metrics",
            data / "nats-metrics",
            logs,
            env={
                "ARC_NATS_MONITOR_URL": f"http://127.0.0.1:{settings.nats_monitor_port}",
                "ARC_NATS_METRICS_PORT": str(settings.nats_metrics_port),
            },
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
    # LiveKit with its Prometheus endpoint on, for the Prometheus part to scrape.
    from arc_stack.prometheus import MeteredLiveKitServer

    parts.append(
        MeteredLiveKitServer(
            data / "livekit",
            logs,
            port=settings.livekit_port,
            rtc_tcp_port=settings.livekit_rtc_tcp_port,
            udp_port=settings.livekit_udp_port,
            api_key=livekit_key,
            api_secret=livekit_secret,
            metrics_port=settings.livekit_prometheus_port,
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
    from arc_stack.jaeger import JaegerServer

    # Before the services, whose OTLP exporters point at it.
    parts.append(
        JaegerServer(
            data / "jaeger",
            logs,
            otlp_port=settings.jaeger_otlp_port,
            query_port=settings.jaeger_query_port,
        )
    )
    parts.extend(_services(settings, state, livekit_key, livekit_secret))
    parts = [p for p in parts if p.name not in settings.skipped]
    if "prometheus" not in settings.skipped:
        parts.append(_prometheus(settings, data, logs, {p.name for p in parts}))
    return parts


def _prometheus(
    settings: StackSettings, data: Path, logs: Path, present: set[str]
) -> ManagedServer:
    """Prometheus, last: it scrapes every part above that serves Prometheus metrics."""
    from arc_stack.prometheus import PrometheusServer, ScrapeTargets

    targets = ScrapeTargets()
    if "nats-metrics" in present:
        targets.add("nats", f"127.0.0.1:{settings.nats_metrics_port}")
    if "pulsar" in present:
        targets.add("pulsar", f"127.0.0.1:{settings.pulsar_admin_port}")
    if "livekit" in present:
        targets.add("livekit", f"127.0.0.1:{settings.livekit_prometheus_port}")
    # One job per service, with every replica as a target (`instance` tells them apart).
    for name, _module, _port_field in SERVICES:
        addresses = [
            f"127.0.0.1:{i.port}"
            for i in service_instances(settings)
            if i.service == name and i.part in present
        ]
        if addresses:
            targets.add(name, *addresses)
    return PrometheusServer(
        data / "prometheus",
        logs,
        port=settings.prometheus_port,
        targets=targets,
        scrape_interval_s=settings.prometheus_scrape_interval_s,
    )


# The Arc services, after the servers they depend on; each serves GET /healthz on its port.
SERVICES: tuple[tuple[str, str, str], ...] = (
    ("brain", "arc_brain", "brain_http_port"),
    ("tts", "arc_tts", "tts_http_port"),
    ("events", "arc_events", "events_http_port"),
    ("voice", "arc_voice", "voice_http_port"),
)


@dataclass(frozen=True)
class ServiceInstance:
    """One process of a service: `brain`, or its second replica `brain-2`."""

    part: str
    service: str
    module: str
    port: int


def service_instances(settings: StackSettings) -> list[ServiceInstance]:
    """Every service process `make run` starts, replicas right after their first."""
    replicas = {
        "brain": settings.brain_replicas,
        "tts": settings.tts_replicas,
        "voice": settings.voice_replicas,
    }
    instances = []
    for name, module, port_field in SERVICES:
        base = getattr(settings, port_field)
        for n in range(1, replicas.get(name, 1) + 1):
            part = name if n == 1 else f"{name}-{n}"
            port = base + (n - 1) * settings.replica_port_step
            instances.append(ServiceInstance(part, name, module, port))
    return instances


def _services(
    settings: StackSettings, state: Path, livekit_key: str, livekit_secret: str
) -> list[ManagedServer]:
    data, logs = state / "data", state / "logs"
    env = {
        # The caller's keys when it has some (a rotation in progress), else the local one.
        "ARC_HTTP__API_KEYS": os.environ.get("ARC_HTTP__API_KEYS") or local_api_key(state),
        "ARC_NATS__URL": f"nats://127.0.0.1:{settings.nats_port}",
        "ARC_POSTGRES__DSN": (
            f"postgresql://postgres@127.0.0.1:{settings.postgres_port}/{settings.postgres_db}"
        ),
        "ARC_PULSAR__SERVICE_URL": f"pulsar://127.0.0.1:{settings.pulsar_port}",
        "ARC_PULSAR__ADMIN_URL": f"http://127.0.0.1:{settings.pulsar_admin_port}",
        "ARC_LIVEKIT__URL": f"ws://127.0.0.1:{settings.livekit_port}",
        "ARC_LIVEKIT__API_KEY": livekit_key,
        "ARC_LIVEKIT__API_SECRET": livekit_secret,
    }
    # A configured endpoint in the caller's environment (OpenAI, vLLM, Ollama) takes
    # precedence over the local model.
    # Every service traces into the local Jaeger unless the caller names another collector
    # (or sets it empty: tracing off).
    if "jaeger" not in settings.skipped and "ARC_TELEMETRY__OTLP_ENDPOINT" not in os.environ:
        env["ARC_TELEMETRY__OTLP_ENDPOINT"] = f"http://127.0.0.1:{settings.jaeger_otlp_port}"
    if "llm" not in settings.skipped and not os.environ.get("ARC_BRAIN__LLM__BASE_URL"):
        env |= local_llm_env(f"http://127.0.0.1:{settings.llm_port}/v1")
    passwords = _nats_passwords(state)
    # The local mesh records its conversations (the agent says so at the start of each) for
    # the sessions console; the caller's own setting wins (docs/recording.md).
    own = {
        "voice": {
            "ARC_VOICE__RECORDING__ENABLED": os.environ.get(
                "ARC_VOICE__RECORDING__ENABLED", "true"
            ),
            "ARC_VOICE__RECORDING__DIRECTORY": os.environ.get(
                "ARC_VOICE__RECORDING__DIRECTORY", str(state / "recordings")
            ),
        }
    }
    if settings.voice_replicas > 1:
        own["voice"]["ARC_VOICE__DISPATCH__MODE"] = os.environ.get(
            "ARC_VOICE__DISPATCH__MODE", "livekit"
        )
    services: list[ManagedServer] = []
    for instance in service_instances(settings):
        name, module = instance.service, instance.module
        # A service joins the mesh once its package has an entry point.
        if (
            importlib.util.find_spec(module) is None
            or importlib.util.find_spec(f"{module}.__main__") is None
        ):
            continue
        services.append(
            ServiceProcess(
                instance.part,
                module,
                f"http://127.0.0.1:{instance.port}/healthz",
                data / instance.part,
                logs,
                env={
                    **env,
                    **own.get(name, {}),
                    f"ARC_{name.upper()}__HTTP_PORT": str(instance.port),
                    "ARC_NATS__USER": name,
                    "ARC_NATS__PASSWORD": passwords[name],
                },
            )
        )
    return services
