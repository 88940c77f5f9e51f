"""docker-compose (Debian's 1.29.2) renders every profile of the development and production
files; each profile starts what it depends on; production publishes no development port,
restarts what stops, and reads every secret from a file; a missing secret is named."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from arc_stack.deploy_tools import (
    COMPOSE_PROFILES,
    DeploymentCheckError,
    compose_config,
    compose_files,
    docker_dir,
    load_yaml,
    missing_compose_secrets,
    outside_profile_dependencies,
    profile_services,
)

from tests.deployment.settings_env import (
    SETTINGS,
    as_setting,
    compose_service_settings,
    settings_variables,
)

pytestmark = pytest.mark.integration

INFRA = {"nats", "postgres", "pulsar", "livekit"}
SERVICES = {"migrate", "llm", "brain", "tts", "tts-2", "events", "voice"}
OBSERVABILITY = {"jaeger", "nats-exporter", "prometheus", "grafana"}
EXPECTED = {
    "infra": INFRA,
    # The services bring the infra they depend on (docker-compose 1.x will not start a
    # service whose dependency is outside the active profiles).
    "services": INFRA | SERVICES,
    "observability": OBSERVABILITY,
    "full": INFRA | SERVICES | OBSERVABILITY,
}
ARC_SERVICES = ("brain", "tts", "tts-2", "events", "voice")
# Published on every interface in production: LiveKit's media and TURN, nothing else.
PUBLIC_PORTS = {(7881, "tcp"), (7882, "udp"), (3478, "udp"), (5349, "tcp")}


def _published(service: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(host ip, published port, protocol) of each port a rendered service publishes."""
    found = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            found.append(
                (port.get("host_ip", ""), int(port["published"]), port.get("protocol", "tcp"))
            )
        else:  # "127.0.0.1:8081:8081/tcp"
            spec, _, protocol = str(port).partition("/")
            parts = spec.split(":")
            host_ip = parts[0] if len(parts) == 3 else ""
            found.append((host_ip, int(parts[-2]), protocol or "tcp"))
    return found


@pytest.mark.parametrize("environment", ["dev", "production"])
@pytest.mark.parametrize("profile", COMPOSE_PROFILES)
def test_every_profile_renders_with_its_services(
    deploy_tools: None, production_env: dict[str, str], profile: str, environment: str
) -> None:
    env = production_env if environment == "production" else {}
    rendered = compose_config(compose_files(environment), profile, env=env)
    assert profile_services(rendered, profile) == EXPECTED[profile]
    assert outside_profile_dependencies(rendered, profile) == []
    assert missing_compose_secrets(rendered) == []


def test_servers_are_official_images_pinned_by_tag(
    compose_renders: dict[str, dict[str, Any]],
) -> None:
    services = compose_renders["dev"]["services"]
    expected = {
        "nats": "nats:",
        "postgres": "pgvector/pgvector:",
        "pulsar": "apachepulsar/pulsar:",
        "livekit": "livekit/livekit-server:",
        "jaeger": "jaegertracing/jaeger:",
        "prometheus": "prom/prometheus:",
        "grafana": "grafana/grafana:",
        "nats-exporter": "natsio/prometheus-nats-exporter:",
    }
    for name, prefix in expected.items():
        image = services[name]["image"]
        tag = image.removeprefix(prefix)
        assert image.startswith(prefix) and tag and tag != "latest", image
        assert any(c.isdigit() for c in tag), image


def test_migrations_run_once_before_the_services(
    compose_renders: dict[str, dict[str, Any]],
) -> None:
    services = compose_renders["dev"]["services"]
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("brain", "events", "voice"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert depends["postgres"] == {"condition": "service_healthy"}
        assert depends["nats"] == {"condition": "service_healthy"}
    assert services["events"]["depends_on"]["pulsar"] == {"condition": "service_healthy"}
    assert services["voice"]["depends_on"]["livekit"] == {"condition": "service_healthy"}
    for name in ARC_SERVICES:
        assert services[name]["stop_signal"] == "SIGTERM"
        assert services[name]["stop_grace_period"] == "30s"


def test_development_ports_are_loopback_only(
    compose_renders: dict[str, dict[str, Any]],
) -> None:
    published = {
        name: _published(service) for name, service in compose_renders["dev"]["services"].items()
    }
    assert (("127.0.0.1", 8081, "tcp")) in published["brain"]
    assert all(ip == "127.0.0.1" for ports in published.values() for ip, _, _ in ports)


def test_production_publishes_no_development_port(
    compose_renders: dict[str, dict[str, Any]],
) -> None:
    services = compose_renders["production"]["services"]
    everywhere = {
        (port, protocol)
        for service in services.values()
        for ip, port, protocol in _published(service)
        if ip not in ("127.0.0.1",)
    }
    assert everywhere == PUBLIC_PORTS
    loopback = {(name, port) for name, s in services.items() for ip, port, _ in _published(s) if ip}
    # Behind the TLS proxy: LiveKit's signalling, the voice page, Grafana.
    assert loopback == {("livekit", 7880), ("voice", 8083), ("grafana", 3000)}


def test_production_restarts_and_reads_secrets_from_files(
    compose_renders: dict[str, dict[str, Any]], production_env: dict[str, str]
) -> None:
    rendered = compose_renders["production"]
    for name, service in rendered["services"].items():
        expected = "on-failure" if name == "migrate" else "unless-stopped"
        assert service.get("restart") == expected, name
        settings = compose_service_settings(name)
        if settings is None:
            continue
        known = settings_variables(SETTINGS[settings])
        environment = service.get("environment") or {}
        assert "PGPASSWORD" not in environment, name
        for variable, value in environment.items():
            setting = known.get(as_setting(variable, known))
            if setting is None or not setting.secret:
                continue
            if variable == "ARC_POSTGRES__DSN":  # the password is PGPASSWORD's, from a file
                assert "@" in value and ":" not in value.split("//")[1].split("@")[0], value
            else:
                assert variable.endswith("_FILE"), f"{name}: {variable} is a literal"
    secrets_dir = production_env["SECRETS_DIR"]
    for name, secret in rendered["secrets"].items():
        assert secret["file"] == f"{secrets_dir}/{name}"


def test_production_services_connect_to_nats_as_themselves(
    compose_renders: dict[str, dict[str, Any]],
) -> None:
    # One NATS user per service (the TTS replicas share theirs, as they share a queue group),
    # its password a secret only that service mounts (docs/security.md).
    users = {"brain": "brain", "tts": "tts", "tts-2": "tts", "events": "events", "voice": "voice"}
    services = compose_renders["production"]["services"]
    for name, user in users.items():
        environment = services[name].get("environment") or {}
        assert environment.get("ARC_NATS__USER") == user, name
        assert environment.get("ARC_NATS__PASSWORD_FILE") == f"/run/secrets/nats_password_{user}"
        assert "ARC_NATS__TOKEN_FILE" not in environment, name
        mounted = {
            s["source"] if isinstance(s, dict) else s for s in services[name].get("secrets") or []
        }
        assert {m for m in mounted if m.startswith("nats_")} == {f"nats_password_{user}"}, name


def test_a_missing_secret_file_is_named(
    deploy_tools: None, production_env: dict[str, str], tmp_path: Path
) -> None:
    for source in Path(production_env["SECRETS_DIR"]).iterdir():
        if source.name != "livekit_config":
            (tmp_path / source.name).write_text("x")
    env = production_env | {"SECRETS_DIR": str(tmp_path)}
    with pytest.raises(DeploymentCheckError) as failure:
        compose_config(compose_files("production"), "infra", env=env)
    message = str(failure.value)
    assert "secret 'livekit_config' (used by livekit)" in message
    assert f"{tmp_path}/livekit_config does not exist" in message


def test_an_undefined_secret_is_named(deploy_tools: None, tmp_path: Path) -> None:
    overlay = tmp_path / "compose.broken.yaml"
    overlay.write_text("services:\n  tts:\n    secrets: [deepgram_api_key]\n")
    with pytest.raises(DeploymentCheckError, match="deepgram_api_key"):
        compose_config([docker_dir() / "compose.yaml", overlay], "services")


def test_production_without_its_secrets_folder_says_so(deploy_tools: None) -> None:
    with pytest.raises(DeploymentCheckError, match="set SECRETS_DIR"):
        compose_config(compose_files("production"), "infra", env={"LIVEKIT_PUBLIC_URL": "wss://x"})


def test_prometheus_config_is_valid_and_scrapes_every_service(
    compose_renders: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The observability profile's Prometheus config, checked by promtool (Debian's, which
    `arc install` puts in place for `make run`'s Prometheus) with Arc's alert rules."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (arc install installs Debian's prometheus)")
    volumes = compose_renders["dev"]["services"]["prometheus"]["volumes"]
    # docker-compose 1.x renders "source:target:mode"; sources are absolute paths.
    mounts = {
        target: Path(source)
        for source, target, *_ in (str(v).split(":") for v in volumes)
        if source.startswith("/")
    }
    config = mounts["/etc/prometheus/prometheus.yml"].read_text()
    (tmp_path / "alerts.yml").write_bytes(mounts["/etc/prometheus/alerts.yml"].read_bytes())
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/alerts.yml", "alerts.yml")
    )
    done = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = {j["job_name"] for j in load_yaml(config)["scrape_configs"]}
    assert {"brain", "tts", "voice", "events", "pulsar", "nats"} <= jobs
