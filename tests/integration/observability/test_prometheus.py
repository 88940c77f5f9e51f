"""Prometheus, alert rules and dashboards (issue 11, items 3-5) against the real thing:
Debian's `promtool` checks the config `make run` writes and runs the alert rules' unit tests
(and must fail when a rule is broken), and a real Prometheus scraping the real services
answers every Grafana panel's PromQL after one spoken turn through a real LiveKit room."""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import json
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml  # type: ignore[import-untyped]
from arc_common.settings import PostgresSettings
from arc_events.service import EventsService
from arc_events.settings import EventsOptions, EventsSettings, PulsarSettings
from arc_stack.nats import NatsServer
from arc_stack.nats_metrics import NatsCollector
from arc_stack.parts import build_parts
from arc_stack.paths import repo_root
from arc_stack.prometheus import (
    MeteredLiveKitServer,
    PrometheusServer,
    ScrapeTargets,
    alert_rules_path,
    check_config,
    install_prometheus,
    promtool,
)
from arc_stack.pulsar import PulsarServer
from arc_stack.settings import StackSettings
from arc_voice.caller import AUDIBLE_DB
from arc_voice.latency import WORKER_STAGES, ReplyTiming, worker_stages
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import SecretStr

from tests.fixtures.brain import BrainFactory
from tests.fixtures.prometheus import PrometheusFactory, query, targets_health, wait_for_samples
from tests.fixtures.tts import TtsWorker
from tests.fixtures.voice import SpeechSynth, VoiceFactory

ROOT = repo_root()
RULE_TESTS = sorted((ROOT / "deployments" / "prometheus" / "tests").glob("*.yml"))
GRAFANA = ROOT / "deployments" / "grafana"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("arc_grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text())
        for path in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def _panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, PromQL) of every panel target."""
    return [
        (dashboard["title"], panel["title"], target["expr"])
        for dashboard in _dashboards().values()
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


# --- promtool: config and rules --------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def promtool_ready(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Installed by `make test`'s `arc install`; a no-op then."""
    await install_prometheus(tmp_path_factory.mktemp("prometheus-install"), say=None)


@pytest.mark.integration
async def test_the_config_make_run_writes_passes_promtool(
    promtool_ready: None, tmp_path: Path
) -> None:
    parts = build_parts(StackSettings(), tmp_path)
    [server] = [p for p in parts if isinstance(p, PrometheusServer)]
    jobs = {job.name for job in server.targets.jobs}
    # Every part that serves Prometheus metrics is scraped (NATS through its exporter part).
    assert {"nats", "pulsar", "livekit"} <= jobs
    services = {p.name for p in parts} & {"brain", "tts", "voice", "events"}
    assert services <= jobs
    server.config_path.parent.mkdir(parents=True)
    server.config_path.write_text(server.config_text())
    await check_config(server.config_path)  # raises with promtool's words when invalid
    # …and the check itself can fail.
    server.config_path.write_text(server.config_text().replace('"scrape_interval"', '"oops"'))
    code, out = await promtool("check", "config", str(server.config_path))
    assert code != 0, out


@pytest.mark.integration
async def test_alert_rules_pass_their_promtool_unit_tests(promtool_ready: None) -> None:
    assert RULE_TESTS
    code, out = await promtool("test", "rules", *map(str, RULE_TESTS))
    assert code == 0, out


def _alert_names() -> list[str]:
    rules = yaml.safe_load(alert_rules_path().read_text())
    return [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]


@pytest.mark.integration
@pytest.mark.parametrize("alert", _alert_names())
async def test_every_alert_has_a_test_that_fires_and_one_that_does_not(
    promtool_ready: None, tmp_path: Path, alert: str
) -> None:
    """Mutation check: with the rule made to never fire, its firing test must fail; made to
    always fire, its quiet test must fail. A rule without both would pass either way."""
    rules = yaml.safe_load(alert_rules_path().read_text())
    for expr, meaning in (("vector(1) < 0", "never fires"), ("vector(1)", "always fires")):
        mutated = copy.deepcopy(rules)
        for group in mutated["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == alert:
                    rule["expr"] = expr
        (tmp_path / "alerts.yml").write_text(json.dumps(mutated))
        tests_dir = tmp_path / "tests"
        tests_dir.mkdir(exist_ok=True)
        for test in RULE_TESTS:
            (tests_dir / test.name).write_text(test.read_text())
        code, out = await promtool("test", "rules", *(str(tests_dir / t.name) for t in RULE_TESTS))
        assert code != 0, f"{alert} {meaning} and every promtool test still passes"
        assert alert in out, out


# --- the voice worker's stage figures ----------------------------------------------------


@pytest.mark.unit
def test_worker_stages_of_a_reply() -> None:
    now_wall, now_mono = time.time(), time.monotonic()
    timing = ReplyTiming(
        turn_id="t1",
        user_stopped_at=now_mono - 1.0,  # the VAD decided 1 s ago…
        transcription_delay_s=0.12,
        end_of_turn_delay_s=0.3,
        brain_first_delta_s=0.08,
        tts_first_chunk_s=None,  # …no TTS figure: left out, not zero
        first_audio_out_at=None,
    )
    user = {"stopped_speaking_at": now_wall - 1.25}  # …of speech that ended 250 ms before
    stages = worker_stages(timing, user, {"e2e_latency": 0.61})
    assert stages.keys() == {
        "voice_to_voice", "end_of_speech", "transcript", "end_of_turn", "brain_first_delta",
    }  # fmt: skip
    assert stages["voice_to_voice"] == 0.61
    assert stages["end_of_speech"] == pytest.approx(0.25, abs=0.01)
    assert set(stages) <= set(WORKER_STAGES)
    # Nothing known: nothing recorded (the framework leaves e2e_latency out at times).
    empty = ReplyTiming("t2", None, None, None, None, None, None)
    assert worker_stages(empty, {}, {}) == {}


# --- dashboards -------------------------------------------------------------------------


@pytest.mark.unit
def test_dashboard_json_is_what_the_generator_writes() -> None:
    rendered = _load_generator().render()
    on_disk = {p.name: p.read_text() for p in (GRAFANA / "dashboards").glob("*.json")}
    assert rendered == on_disk, "run: python deployments/grafana/generate.py"
    titles = {d["title"] for d in _dashboards().values()}
    assert titles == {
        "Arc / Turn latency",
        "Arc / Conversations",
        "Arc / System health",
        "Arc / LiveKit",
    }
    provisioning = yaml.safe_load((GRAFANA / "provisioning/datasources/arc.yml").read_text())
    uids = {d["uid"] for d in provisioning["datasources"]}
    for dashboard in _dashboards().values():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] in uids


# --- a live Prometheus after a real room turn -------------------------------------------


@pytest.fixture
def livekit_server(metered_livekit_server: MeteredLiveKitServer) -> MeteredLiveKitServer:
    """The voice fixtures' LiveKit, for this module: one with its Prometheus endpoint on."""
    return metered_livekit_server


@pytest_asyncio.fixture(loop_scope="session")
async def events_on_session_outbox(
    migrated_dsn: str, pulsar_server: PulsarServer
) -> AsyncIterator[EventsService]:
    """The events service (relay and consumers) on the database the voice worker writes its
    outbox to, with topics of its own."""
    settings = EventsSettings(
        postgres=PostgresSettings(dsn=SecretStr(migrated_dsn), pool_min=1, pool_max=4),
        pulsar=PulsarSettings(
            service_url=pulsar_server.service_url,
            admin_url=pulsar_server.admin_url,
            operation_timeout_s=5,
        ),
        events=EventsOptions(
            http_port=0,
            topic_suffix=f"-obs{uuid.uuid4().hex[:8]}",
            relay_poll_interval_s=0.5,
            stats_interval_s=0.5,
        ),
    )
    async with EventsService(settings) as service:
        yield service


# Panels that cannot show data after one calm turn on loopback, and why.
NO_DATA_EXPECTED: dict[str, str] = {}

# Grafana's variables, as Prometheus needs them: a rate window that holds the whole test.
GRAFANA_VARIABLES = {"$__rate_interval": "2m"}


def _as_promql(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert not re.search(r"\$\w+", expr), f"unknown Grafana variable in {expr!r}"
    return expr


@pytest.mark.integration
@pytest.mark.e2e
@pytest.mark.slow
async def test_every_panel_returns_data_after_a_real_turn(
    prometheus_factory: PrometheusFactory,
    metrics_http: Callable[[CollectorRegistry], str],
    metered_livekit_server: MeteredLiveKitServer,
    pulsar_server: PulsarServer,
    events_on_session_outbox: EventsService,
    voice_factory: VoiceFactory,
    brain_factory: BrainFactory,
    tts_worker: TtsWorker,
    speech: SpeechSynth,
    subject_prefix: str,
    nats_server: NatsServer,
) -> None:
    brain = await brain_factory(subject_prefix=subject_prefix)
    harness = await voice_factory(greeting="")
    targets = ScrapeTargets()
    targets.add("brain", brain.http_url.removeprefix("http://"))
    targets.add("tts", metrics_http(tts_worker.synthesizer.metrics.registry))
    targets.add("voice", metrics_http(REGISTRY))
    targets.add("events", metrics_http(events_on_session_outbox.metrics.registry))
    targets.add("pulsar", pulsar_server.admin_url.removeprefix("http://"))
    targets.add("livekit", f"127.0.0.1:{metered_livekit_server.metrics_port}")
    nats_registry = CollectorRegistry()
    nats_registry.register(NatsCollector(f"http://127.0.0.1:{nats_server.monitor_port}"))
    targets.add("nats", metrics_http(nats_registry))
    prometheus = await prometheus_factory(targets)

    # One turn, and a barge-in over its answer.
    caller, conversation = await harness.talk_to("olga")
    pcm, rate = speech.say("What can you do?")
    spoken = await (await caller.say(pcm, rate))
    await caller.wait_audible(spoken.speech_ended_at, within_s=30)
    await asyncio.sleep(1.0)
    stop, stop_rate = speech.say("Stop, please stop.")
    await (await caller.say(stop, stop_rate))
    await caller.wait_quiet(0.8, within_s=60)
    assert conversation.log.barge_ins, "the agent was not interrupted"
    assert any(h.level > AUDIBLE_DB for h in caller.heard)

    # Scraped: every stage of the turn, a barge-in stop among them (the worker records a
    # reply's stages when the reply ends, which for the second one may be after the silence).
    # An increase, not a count: the registry is this process's, and earlier tests of the same
    # run have counted turns of their own before this Prometheus started.
    wanted = {"voice_to_voice", "brain_first_delta", "tts_first_chunk", "barge_in_stop"}
    stages: set[str] = set()
    for _ in range(60):
        counts = await query(
            prometheus, "sum by (stage) (increase(arc_voice_turn_stage_seconds_count[2m]))"
        )
        stages = {s["metric"]["stage"] for s in counts if float(s["value"][1]) > 0}
        if wanted <= stages:
            break
        await asyncio.sleep(0.5)
    assert wanted <= stages, stages

    # Prometheus runs Arc's alert rules, and they evaluate without errors.
    async with httpx.AsyncClient(timeout=10.0) as client:
        groups = (await client.get(f"{prometheus.url}/api/v1/rules")).json()["data"]["groups"]
    rules = {r["name"]: r["health"] for g in groups for r in g["rules"]}
    assert set(_alert_names()) <= set(rules), rules
    assert set(rules.values()) == {"ok"}, rules

    health = await targets_health(prometheus)
    assert set(health) == {job.name for job in targets.jobs} | {"prometheus"}, health
    assert set(health.values()) == {"up"}, health

    missing = []
    for dashboard, panel, expr in _panel_queries():
        if panel in NO_DATA_EXPECTED:
            continue
        samples = await wait_for_samples(prometheus, _as_promql(expr), within_s=5)
        if not samples:
            raw = await query(prometheus, _as_promql(expr))
            missing.append(f"{dashboard} / {panel}: {expr} → {raw}")
    assert not missing, "panels without data:\n" + "\n".join(missing)
