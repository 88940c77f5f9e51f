"""`python -m arc_stack.nats_metrics`: nats-server's monitoring JSON as Prometheus metrics.

nats-server serves its state only as JSON (`/varz`, `/jsz` on the monitoring port), and the
official exporter (`github.com/nats-io/prometheus-nats-exporter`) and the generic
`json_exporter` are both refused by the Go module proxy this machine reaches (403), and
Debian packages neither. This is the part of that exporter Arc's dashboards and alerts
need: each scrape reads `/varz` and `/jsz` once and reports them under the official
exporter's names (`gnatsd_varz_*`, `gnatsd_jsz_*`), so its published dashboards and rules
apply as they are. `nats_up` is 0 when the server did not answer.

Settings: `ARC_NATS_MONITOR_URL` (http://127.0.0.1:8222) and `ARC_NATS_METRICS_PORT` (7777,
loopback).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import httpx
from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from pydantic_settings import BaseSettings, SettingsConfigDict

from arc_stack.settings import Port

log = logging.getLogger(__name__)

# /varz field → (metric suffix, kind, help). Counters only ever grow in nats-server.
VARZ: dict[str, tuple[str, str, str]] = {
    "connections": ("connections", "gauge", "Client connections open now"),
    "total_connections": ("total_connections", "counter", "Client connections ever opened"),
    "subscriptions": ("subscriptions", "gauge", "Subscriptions held by the server"),
    "slow_consumers": ("slow_consumers", "counter", "Clients cut off for reading too slowly"),
    "in_msgs": ("in_msgs", "counter", "Messages received from clients"),
    "out_msgs": ("out_msgs", "counter", "Messages delivered to clients"),
    "in_bytes": ("in_bytes", "counter", "Bytes received from clients"),
    "out_bytes": ("out_bytes", "counter", "Bytes delivered to clients"),
    "mem": ("mem", "gauge", "Resident memory of nats-server, bytes"),
    "cpu": ("cpu", "gauge", "CPU use of nats-server, percent of one core"),
}
JSZ: dict[str, tuple[str, str, str]] = {
    "streams": ("streams", "gauge", "JetStream streams"),
    "consumers": ("consumers", "gauge", "JetStream consumers"),
    "messages": ("messages", "gauge", "Messages stored in JetStream"),
    "bytes": ("bytes", "gauge", "Bytes stored in JetStream"),
}


class NatsMetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARC_", extra="ignore")

    nats_monitor_url: str = "http://127.0.0.1:8222"
    nats_metrics_host: str = "127.0.0.1"
    nats_metrics_port: Port = 7777


class NatsCollector(Collector):
    """Reads the server on every scrape, so a value is never older than the scrape."""

    def __init__(self, monitor_url: str, timeout_s: float = 2.0) -> None:
        self.monitor_url = monitor_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_s)

    def _get(self, path: str) -> dict[str, Any] | None:
        try:
            answer = self._http.get(f"{self.monitor_url}{path}")
            answer.raise_for_status()
            data = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("nats monitoring %s did not answer: %s", path, exc)
            return None
        return data if isinstance(data, dict) else None

    def collect(self) -> Iterator[Metric]:
        varz = self._get("/varz")
        yield GaugeMetricFamily(
            "nats_up",
            "1 when nats-server's monitoring port answered",
            value=1.0 if varz is not None else 0.0,
        )
        if varz is None:
            return
        yield from _families("gnatsd_varz", VARZ, varz)
        jsz = self._get("/jsz")
        if jsz is not None:
            yield from _families("gnatsd_jsz", JSZ, jsz)


def _families(
    prefix: str, fields: dict[str, tuple[str, str, str]], data: dict[str, Any]
) -> Iterator[Metric]:
    for field, (suffix, kind, text) in fields.items():
        value = data.get(field)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        name = f"{prefix}_{suffix}"
        # The official exporter's names carry no `_total`, which prometheus_client appends
        # to every counter; typed as gauges they keep those names (rate() reads both).
        note = " (a counter: only grows)" if kind == "counter" else ""
        yield GaugeMetricFamily(name, text + note, value=float(value))


def serve(settings: NatsMetricsSettings) -> None:
    """Serve `/metrics` until SIGTERM or SIGINT."""
    registry = CollectorRegistry()
    registry.register(NatsCollector(settings.nats_monitor_url))
    server, thread = start_http_server(
        settings.nats_metrics_port, settings.nats_metrics_host, registry=registry
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info(
        "serving nats-server's metrics from %s on %s:%d",
        settings.nats_monitor_url,
        settings.nats_metrics_host,
        settings.nats_metrics_port,
    )
    stop.wait()
    server.shutdown()
    thread.join(timeout=5)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(NatsMetricsSettings())


if __name__ == "__main__":
    main()
