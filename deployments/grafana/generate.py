"""Arc's Grafana dashboards as code: `python deployments/grafana/generate.py` writes
`dashboards/*.json`, which the provisioning in `provisioning/` loads into the official
Grafana image (docker-compose mounts both folders; Grafana itself is not installable on
this machine, see docs/observability.md).

Every panel's PromQL is tested against a live Prometheus after a real room turn
(tests/integration/observability/test_prometheus.py); the test also checks that the JSON
files are what this script writes. Only the standard library is used, so the script runs
anywhere.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DASHBOARD_DIR = HERE / "dashboards"

# The provisioned datasources' uids (provisioning/datasources/arc.yml).
PROMETHEUS = {"type": "prometheus", "uid": "arc-prometheus"}
JAEGER_UI = "http://127.0.0.1:16686"

RATE = "$__rate_interval"


@dataclass
class Query:
    expr: str
    legend: str = ""


@dataclass
class Panel:
    title: str
    queries: list[Query]
    description: str = ""
    kind: str = "timeseries"  # timeseries, stat, bargauge, text
    unit: str = "short"
    width: int = 12
    height: int = 8
    text: str = ""
    links: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel]
    tags: list[str] = field(default_factory=lambda: ["arc"])
    variables: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)


def quantile(q: float, metric: str, by: str = "", where: str = "") -> str:
    group = f"le, {by}" if by else "le"
    selector = f"{metric}_bucket{{{where}}}" if where else f"{metric}_bucket"
    return f"histogram_quantile({q}, sum by ({group}) (rate({selector}[{RATE}])))"


def percentile_name(q: float) -> str:
    return f"p{int(q * 100)}"


def percentiles(metric: str, where: str, qs: tuple[float, ...]) -> list[Query]:
    """One line per quantile of the series `where` picks, each legend named after it."""
    return [Query(quantile(q, metric, where=where), percentile_name(q)) for q in qs]


STAGE = "arc_voice_turn_stage_seconds"


def turn_latency() -> Dashboard:
    per_stage = [
        Panel(
            f"Per-stage {percentile_name(q)}",
            [Query(quantile(q, STAGE, by="stage"), "{{stage}}")],
            description=f"{percentile_name(q)} of each stage of a turn as the voice worker times "
            "it (docs/observability.md lists what each stage measures).",
            unit="s",
            width=8,
        )
        for q in (0.5, 0.95, 0.99)
    ]
    return Dashboard(
        uid="arc-turn-latency",
        title="Arc / Turn latency",
        description="Where a turn's time goes: voice to voice and each stage, p50/p95/p99.",
        variables=[
            {
                "name": "trace_id",
                "label": "Trace id",
                "type": "textbox",
                "query": "",
                "current": {"text": "", "value": ""},
                "description": "Paste a trace id (from a log line or the voice worker's "
                "/rooms/<room>/people/<who>/replies) and follow the link to Jaeger.",
            }
        ],
        links=[
            {
                "title": "Open trace ${trace_id} in Jaeger",
                "type": "link",
                "url": f"{JAEGER_UI}/trace/${{trace_id}}",
                "targetBlank": True,
                "icon": "external link",
            },
            {
                "title": "Search slow turns in Jaeger",
                "type": "link",
                "url": f"{JAEGER_UI}/search?service=arc-voice&minDuration=500ms",
                "targetBlank": True,
                "icon": "external link",
            },
        ],
        panels=[
            Panel(
                "Voice to voice",
                percentiles(STAGE, 'stage="voice_to_voice"', (0.5, 0.95, 0.99)),
                description="From the end of the person's speech to the agent's first audio "
                "frame. HighLatency fires when p95 stays above 500 ms for 5 minutes.",
                unit="s",
                width=16,
            ),
            Panel(
                "Mean time per stage",
                [
                    Query(
                        f"sum by (stage) (rate({STAGE}_sum[{RATE}])) "
                        f"/ sum by (stage) (rate({STAGE}_count[{RATE}]))",
                        "{{stage}}",
                    )
                ],
                description="Average seconds per stage: the stages overlap (the brain may "
                "start before the turn is confirmed), so they do not add up to voice to voice.",
                kind="bargauge",
                unit="s",
                width=8,
            ),
            *per_stage,
            Panel(
                "Brain first delta (brain's own clock)",
                [Query(quantile(0.95, "arc_brain_first_delta_seconds", by="route"), "{{route}}")],
                description="p95 from the brain receiving a turn to its first speakable "
                "chunk, by route (skill or LLM).",
                unit="s",
                width=8,
            ),
            Panel(
                "TTS first chunk (TTS's own clock)",
                [Query(quantile(0.95, "arc_tts_first_chunk_seconds"), "p95")],
                description="p95 from a TTS stream's start to its first audio chunk.",
                unit="s",
                width=8,
            ),
            Panel(
                "Barge-in stop",
                percentiles(STAGE, 'stage="barge_in_stop"', (0.5, 0.95)),
                description="From the person's speech over the agent being confirmed to the "
                "agent's audio stopping.",
                unit="s",
                width=8,
            ),
            Panel(
                "Find a slow turn's trace",
                [],
                kind="text",
                width=24,
                height=4,
                text=(
                    "A slow turn: pick its time on the graphs above, then use **Search slow "
                    "turns in Jaeger** (top right) for turns over 500 ms around that time, or "
                    "paste a trace id into *Trace id* and open it. Every log line carries "
                    "`trace_id` (see docs/observability.md and docs/tracing.md)."
                ),
            ),
        ],
    )


def conversations() -> Dashboard:
    per_min = f"[{RATE}])) * 60"
    return Dashboard(
        uid="arc-conversations",
        title="Arc / Conversations",
        description="Sessions, turns, interruptions and announcements.",
        panels=[
            Panel(
                "Active sessions",
                [Query("sum(arc_voice_conversations_active)", "sessions")],
                kind="stat",
                width=6,
            ),
            Panel(
                "Rooms with the agent",
                [Query("sum(arc_voice_rooms_joined)", "rooms")],
                kind="stat",
                width=6,
            ),
            Panel(
                "Turns per minute",
                [
                    Query(
                        f"sum by (interrupted) (rate(arc_voice_turns_total{per_min}",
                        "interrupted: {{interrupted}}",
                    )
                ],
                description="Replies the person heard (interrupted: cut off by a barge-in).",
                width=12,
            ),
            Panel(
                "Interruptions per minute",
                [
                    Query(f"sum(rate(arc_voice_interruptions_total{per_min}", "barge-ins"),
                    Query(
                        f"sum(rate(arc_voice_false_interruptions_total{per_min} or vector(0)",
                        "false interruptions",
                    ),
                ],
                description="Barge-ins (speech over the agent that stopped it) and sounds "
                "that paused it without words.",
                width=12,
            ),
            Panel(
                "Announcements by outcome",
                [
                    Query(
                        f"sum by (outcome) (rate(arc_voice_announcements_total{per_min}",
                        "received: {{outcome}}",
                    ),
                    Query(
                        f"sum by (outcome) (rate(arc_voice_announcement_outcomes_total{per_min}",
                        "{{outcome}}",
                    ),
                ],
                description="Announcements received (queued, no_room, rejected) and what became "
                "of the queued ones (spoken, superseded, dropped), per minute.",
                width=12,
            ),
            Panel(
                "Brain turns by route and outcome",
                [
                    Query(
                        f"sum by (route, outcome) (rate(arc_brain_turns_total{per_min}",
                        "{{route}} {{outcome}}",
                    )
                ],
                width=12,
            ),
            Panel(
                "Noise gate: frames gated per second",
                [Query(f"sum(rate(arc_voice_noise_gate_frames_gated_total[{RATE}]))", "gated")],
                description="Microphone frames the noise gate silenced before the VAD "
                "(background noise the agent did not listen to).",
                width=12,
            ),
        ],
    )


def system_health() -> Dashboard:
    return Dashboard(
        uid="arc-system-health",
        title="Arc / System health",
        description="Is every part up, what fails, and what each process uses.",
        panels=[
            Panel(
                "Up",
                [Query("up", "{{job}}")],
                description="1 when Prometheus scraped the part (NATS through "
                "arc_stack.nats_metrics, which reads nats-server's monitoring JSON).",
                kind="stat",
                width=24,
                height=5,
            ),
            Panel(
                "Errors by service and code",
                [
                    Query(
                        f"sum by (service, code) (rate(arc_voice_errors_total[{RATE}]))",
                        "{{service}} {{code}}",
                    )
                ],
                description="Contract errors the voice worker got back, per second. ErrorRate "
                "fires above 5% of turns (cancelled excluded).",
                width=12,
            ),
            Panel(
                "Stream outcomes (brain and TTS)",
                [
                    Query(
                        f"sum by (outcome) (rate(arc_brain_turns_total[{RATE}]))",
                        "brain {{outcome}}",
                    ),
                    Query(
                        f"sum by (outcome) (rate(arc_tts_streams_total[{RATE}]))",
                        "tts {{outcome}}",
                    ),
                ],
                width=12,
            ),
            Panel(
                "CPU per process",
                [Query(f"rate(process_cpu_seconds_total[{RATE}])", "{{job}}")],
                description="CPU seconds per second (1 = one core).",
                unit="percentunit",
                width=12,
            ),
            Panel(
                "Memory per process",
                [Query("process_resident_memory_bytes", "{{job}}")],
                unit="bytes",
                width=12,
            ),
            Panel(
                "Postgres (as the brain sees it)",
                [Query("min(arc_brain_memory_available)", "available")],
                description="1 while the brain's history and memory queries answer; 0 during "
                "an outage (turns are answered and written later).",
                kind="stat",
                width=6,
            ),
            Panel(
                "NATS",
                [
                    Query("max(nats_up)", "up"),
                    Query("sum(gnatsd_varz_connections)", "connections"),
                    Query("sum(gnatsd_varz_slow_consumers)", "slow consumers"),
                ],
                description="nats-server answering its monitoring port, client connections "
                "(every service holds one), and clients it cut off for reading too slowly.",
                kind="stat",
                width=6,
            ),
            Panel(
                "NATS messages",
                [
                    Query(f"sum(rate(gnatsd_varz_in_msgs[{RATE}]))", "in"),
                    Query(f"sum(rate(gnatsd_varz_out_msgs[{RATE}]))", "out"),
                ],
                description="Messages per second into and out of nats-server: requests, "
                "streamed reply chunks, cancels and announcements.",
                width=6,
            ),
            Panel(
                "Pulsar broker",
                [Query('up{job="pulsar"}', "up"), Query("sum(pulsar_topics_count)", "topics")],
                kind="stat",
                width=6,
            ),
            Panel(
                "Outbox: oldest unsent event",
                [Query("max(arc_events_outbox_oldest_unsent_age_seconds)", "age")],
                description="OutboxBacklog fires above 60 s.",
                unit="s",
                width=6,
            ),
            Panel(
                "Pulsar consumers: backlog",
                [Query("sum by (consumer) (arc_events_consumer_backlog)", "{{consumer}}")],
                description="Messages waiting in each consumer's subscription "
                "(PulsarConsumerLag fires above 1000 for 5 minutes).",
                width=6,
            ),
        ],
    )


def livekit() -> Dashboard:
    return Dashboard(
        uid="arc-livekit",
        title="Arc / LiveKit",
        description="The LiveKit server's own metrics: rooms, participants, packets.",
        panels=[
            Panel("Rooms", [Query("sum(livekit_room_total)", "rooms")], kind="stat", width=6),
            Panel(
                "Participants",
                [Query("sum(livekit_participant_total)", "participants")],
                kind="stat",
                width=6,
            ),
            Panel(
                "Packets per second",
                [
                    Query(
                        f"sum by (direction) (rate(livekit_packet_total[{RATE}]))",
                        "{{direction}}",
                    )
                ],
                width=12,
            ),
            Panel(
                "Packet loss",
                [
                    Query(
                        f"(sum(rate(livekit_packet_loss_total[{RATE}])) or vector(0)) "
                        f"/ sum(rate(livekit_packet_total[{RATE}]))",
                        "lost",
                    )
                ],
                description="Lost packets as a share of packets. LiveKit creates the loss "
                "series at the first lost packet, so no loss reads as 0 here.",
                unit="percentunit",
                width=12,
            ),
            Panel(
                "Jitter p95",
                [Query(f"{quantile(0.95, 'livekit_jitter_us')} / 1000", "p95")],
                description="Jitter of the media LiveKit receives and forwards (ms).",
                unit="ms",
                width=12,
            ),
        ],
    )


DASHBOARDS = (turn_latency, conversations, system_health, livekit)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
    }
    if panel.kind == "text":
        body["options"] = {"mode": "markdown", "content": panel.text}
        return body
    body["datasource"] = PROMETHEUS
    body["fieldConfig"] = {"defaults": {"unit": panel.unit}, "overrides": []}
    body["targets"] = [
        {
            "refId": chr(ord("A") + i),
            "datasource": PROMETHEUS,
            "expr": q.expr,
            "legendFormat": q.legend,
            "range": True,
        }
        for i, q in enumerate(panel.queries)
    ]
    if panel.kind == "stat":
        body["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    return body


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    panels, x, y, row_height = [], 0, 0, 0
    for i, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel_json(panel, i, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": dashboard.tags,
        "timezone": "browser",
        "editable": True,
        "refresh": "10s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "links": dashboard.links,
        "templating": {"list": dashboard.variables},
        "panels": panels,
    }


def render() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    out = {}
    for build in DASHBOARDS:
        dashboard = build()
        name = dashboard.uid.removeprefix("arc-") + ".json"
        out[name] = json.dumps(dashboard_json(dashboard), indent=2) + "\n"
    return out


def main() -> int:
    DASHBOARD_DIR.mkdir(exist_ok=True)
    for name, text in render().items():
        (DASHBOARD_DIR / name).write_text(text)
        print(f"wrote {DASHBOARD_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
