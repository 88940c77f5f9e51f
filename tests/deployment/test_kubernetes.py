"""Every kustomize target (base, dev, prod) renders with kustomize and validates against the
Kubernetes schemas (kubernetes-validate, strict); every workload has its probes, resources,
disruption budget and (brain, tts) autoscaler; a missing Secret or key is named."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
from arc_stack.deploy_tools import (
    EXTERNAL_SECRETS,
    KUSTOMIZE_TARGETS,
    DeploymentCheckError,
    kubernetes_dir,
    kustomize_build,
    validate_kubernetes,
)

pytestmark = pytest.mark.integration

SERVICES = {"arc-brain": 8081, "arc-tts": 8082, "arc-events": 8084, "arc-voice": 8083}


def _objects(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("target", KUSTOMIZE_TARGETS)
def test_renders_and_validates(
    kubernetes_renders: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = kubernetes_renders[target]
    assert validate_kubernetes(docs, EXTERNAL_SECRETS[target]) == []
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "StatefulSet"} <= kinds
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds


@pytest.mark.parametrize("target", KUSTOMIZE_TARGETS)
def test_every_service_probes_healthz_within_its_resources(
    kubernetes_renders: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = kubernetes_renders[target]
    deployments = _objects(docs, "Deployment")
    services = _objects(docs, "Service")
    pdbs = _objects(docs, "PodDisruptionBudget")
    for name, port in SERVICES.items():
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, name
        resources = container["resources"]
        assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["terminationGracePeriodSeconds"] >= 30
        assert services[name]["spec"]["ports"][0]["port"] == port
        assert pdbs[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
    autoscaled = {
        h["spec"]["scaleTargetRef"]["name"]
        for h in _objects(docs, "HorizontalPodAutoscaler").values()
    }
    assert autoscaled == {"arc-brain", "arc-tts"}


def test_production_pins_registry_images(
    kubernetes_renders: dict[str, list[dict[str, Any]]],
) -> None:
    for deployment in _objects(kubernetes_renders["overlays/prod"], "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            image = container["image"]
            assert image.startswith("registry.example.com/arc/") and image.endswith(":0.1.0")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("replicas", "two", "Deployment/arc-tts: spec/replicas: 'two' is not of type"),
        ("replicaz", 2, "Deployment/arc-tts: spec: Additional properties are not allowed"),
    ],
)
def test_a_schema_violation_is_reported(
    kubernetes_renders: dict[str, list[dict[str, Any]]], field: str, value: Any, problem: str
) -> None:
    docs = copy.deepcopy(kubernetes_renders["overlays/dev"])
    _objects(docs, "Deployment")["arc-tts"]["spec"][field] = value
    problems = validate_kubernetes(docs)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_a_missing_secret_or_key_is_named(
    kubernetes_renders: dict[str, list[dict[str, Any]]],
) -> None:
    docs = [d for d in kubernetes_renders["overlays/dev"] if d["kind"] != "Secret"]
    problems = validate_kubernetes(docs)
    # The generated Secret's name carries kustomize's content hash.
    voice = [p for p in problems if p.startswith("Deployment/arc-voice: Secret 'arc-secrets-")]
    assert voice and voice[0].endswith("' is not defined"), problems
    # Production expects exactly the documented keys: one more reference fails.
    prod = copy.deepcopy(kubernetes_renders["overlays/prod"])
    brain = _objects(prod, "Deployment")["arc-brain"]
    brain["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {
            "name": "ARC_BRAIN__LLM__API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "arc-secrets", "key": "llm-api-key"}},
        }
    )
    problems = validate_kubernetes(prod, EXTERNAL_SECRETS["overlays/prod"])
    assert problems == ["Deployment/arc-brain: Secret 'arc-secrets' has no key 'llm-api-key'"]


def test_a_broken_overlay_fails_with_kustomizes_message(deploy_tools: None, tmp_path: Path) -> None:
    shutil.copytree(kubernetes_dir(), tmp_path / "kubernetes")
    overlay = tmp_path / "kubernetes" / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("  - namespace.yaml\n", "  - gone.yaml\n"))
    with pytest.raises(DeploymentCheckError, match=r"gone\.yaml"):
        kustomize_build(overlay.parent)


def test_production_services_use_their_own_nats_user(
    kubernetes_renders: dict[str, list[dict[str, Any]]],
) -> None:
    # Each service connects as itself, with its own key of arc-secrets (docs/security.md).
    deployments = _objects(kubernetes_renders["overlays/prod"], "Deployment")
    for name, user in {
        "arc-brain": "brain",
        "arc-tts": "tts",
        "arc-events": "events",
        "arc-voice": "voice",
    }.items():
        env = {
            e["name"]: e
            for e in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["ARC_NATS__USER"]["value"] == user, name
        ref = env["ARC_NATS__PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "arc-secrets", "key": f"nats-password-{user}"}, name
        assert "ARC_NATS__TOKEN" not in env, name
