"""Typed settings shared by every service. Each service subclasses `ServiceSettings` once and
builds it at start-up (never at import time); values come from `ARC_*` environment variables,
nested groups with a double underscore (`ARC_NATS__URL`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class NatsSettings(BaseModel):
    url: str = "nats://127.0.0.1:4222"
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    creds_file: Path | None = None
    name: str | None = None
    connect_timeout_s: float = Field(default=2.0, gt=0)
    # Initial connection: exponential backoff up to this many attempts before start-up fails.
    connect_attempts: int = Field(default=10, ge=1)
    reconnect_wait_s: float = Field(default=0.5, gt=0)
    max_reconnect_attempts: int = Field(default=-1, ge=-1)
    subject_prefix: str = ""
    # TLS to the server (a `tls://` URL, or any of these set): the CA that signed the
    # server's certificate, and a client certificate and key when the server asks for one.
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @property
    def uses_tls(self) -> bool:
        return self.url.startswith("tls://") or self.tls_ca_file is not None


class PostgresSettings(BaseModel):
    dsn: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5433/arc")
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=8, ge=1)


class TelemetrySettings(BaseModel):
    # OTLP/HTTP endpoint (for example http://127.0.0.1:4318); tracing is off when unset or
    # empty. `make run` sets it to its Jaeger; a service started by hand or by a test fixture
    # traces nothing unless told where to.
    otlp_endpoint: str | None = None
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    # One batch's export, retries included, gives up after this: the exporter's thread is
    # back for the next batch soon when the collector is down (spans are dropped, not queued
    # forever), and a service's shutdown waits at most this long for its last spans.
    export_timeout_s: float = Field(default=2.0, gt=0, le=60)
    # How long a finished span waits for the rest of its batch (a trace shows up this soon).
    schedule_delay_ms: int = Field(default=500, ge=10, le=60_000)
    # Finished spans held while the exporter is busy or the collector is away; more are
    # dropped.
    max_queue_size: int = Field(default=4096, ge=64, le=1_000_000)


class LogSettings(BaseModel):
    level: str = "INFO"
    json_format: bool = Field(default=True, alias="json")
    # What people said and were answered, in log lines (`arc_common.logging.said`): off,
    # only its length is logged; on for debugging a conversation, never by default.
    user_text: bool = False


class HttpSettings(BaseModel):
    """`ARC_HTTP__*`: the same for every service."""

    # Keys that open the non-public routes, comma-separated (`ARC_HTTP__API_KEYS=k1,k2`):
    # two at once let a key be rotated without downtime. None: those routes answer 401.
    api_keys: Annotated[list[SecretStr], NoDecode] = []
    # A request body past this is refused with `too_large` before it is read whole.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Requests per minute per client address on the routes that cost the most to abuse
    # (chat turns, LiveKit tokens); beyond it `busy` with 429.
    rate_limit_per_minute: int = Field(default=120, ge=1, le=1_000_000)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _long_enough(cls, keys: list[SecretStr]) -> list[SecretStr]:
        # A short key can be guessed over the network; `make run` makes 32-byte ones.
        if any(len(key.get_secret_value()) < 16 for key in keys):
            raise ValueError("every API key must be at least 16 characters")
        return keys


class ServiceSettings(BaseSettings):
    """Base of every service's settings object."""

    model_config = SettingsConfigDict(
        env_prefix="ARC_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    service_name: str = "arc"
    nats: NatsSettings = NatsSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
