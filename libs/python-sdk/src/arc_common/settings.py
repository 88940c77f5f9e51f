"""Typed settings shared by every service. Each service subclasses `ServiceSettings` once and
builds it at start-up (never at import time); values come from `ARC_*` environment variables,
nested groups with a double underscore (`ARC_NATS__URL`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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


class PostgresSettings(BaseModel):
    dsn: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5433/arc")
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=8, ge=1)


class TelemetrySettings(BaseModel):
    # OTLP/HTTP endpoint (for example http://127.0.0.1:4318); tracing is off when unset.
    otlp_endpoint: str | None = None
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)


class LogSettings(BaseModel):
    level: str = "INFO"
    json_format: bool = Field(default=True, alias="json")


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
    log: LogSettings = LogSettings()
