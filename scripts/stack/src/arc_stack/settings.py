"""Settings of the local mesh: where each real server listens (`ARC_*` variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARC_", extra="ignore")

    nats_port: int = Field(default=4222, gt=0, lt=65536)
    nats_monitor_port: int = Field(default=8222, gt=0, lt=65536)
    postgres_port: int = Field(default=5433, gt=0, lt=65536)
    postgres_db: str = "arc"
    pulsar_port: int = Field(default=6650, gt=0, lt=65536)
    pulsar_admin_port: int = Field(default=8080, gt=0, lt=65536)
    pulsar_bookie_port: int = Field(default=3181, gt=0, lt=65536)
    livekit_port: int = Field(default=7880, gt=0, lt=65536)
    livekit_rtc_tcp_port: int = Field(default=7881, gt=0, lt=65536)
    livekit_udp_port: int = Field(default=7882, gt=0, lt=65536)
    livekit_api_key: str = "devkey"
    livekit_api_secret: str = "secret"
    brain_http_port: int = Field(default=8081, gt=0, lt=65536)
    tts_http_port: int = Field(default=8082, gt=0, lt=65536)
    voice_http_port: int = Field(default=8083, gt=0, lt=65536)
    events_http_port: int = Field(default=8084, gt=0, lt=65536)
    # Comma-separated parts `make run` leaves out, e.g. "pulsar,livekit".
    stack_skip: str = ""

    @property
    def skipped(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.stack_skip.split(",") if p.strip())
