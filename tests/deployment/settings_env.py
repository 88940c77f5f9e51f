"""The ARC_* variables a service's settings class reads, walked the way pydantic-settings
reads them (env prefix, `__` between nested groups, aliases), and the variables a deployment
file sets for each service."""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from arc_brain.settings import BrainSettings
from arc_common.settings import ServiceSettings
from arc_events.settings import EventsSettings
from arc_tts.settings import TtsSettings
from arc_voice.settings import VoiceSettings
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

SETTINGS: dict[str, type[ServiceSettings]] = {
    "brain": BrainSettings,
    "tts": TtsSettings,
    "events": EventsSettings,
    "voice": VoiceSettings,
}

# The image's entry point turns NAME_FILE into NAME (deployments/docker/entrypoint.sh); these
# settings end in _FILE themselves and are left alone.
FILE_SUFFIX = "_FILE"


@dataclass(frozen=True)
class Setting:
    variable: str
    field: FieldInfo
    group: bool  # a nested group, settable whole as JSON

    @property
    def required(self) -> bool:
        return self.field.is_required()

    @property
    def secret(self) -> bool:
        annotation = self.field.annotation
        return annotation is SecretStr or SecretStr in get_args(annotation)

    @property
    def default_text(self) -> str:
        default = self.field.get_default(call_default_factory=True)
        if isinstance(default, SecretStr):
            return default.get_secret_value()
        return str(default)


def _group(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _walk(model: type[BaseModel], prefix: str, delimiter: str) -> Iterator[Setting]:
    for name, field in model.model_fields.items():
        # A nested group is validated by alias: `ARC_LOG__JSON`, not `..._JSON_FORMAT`.
        variable = f"{prefix}{(field.alias or name).upper()}"
        group = _group(field.annotation)
        yield Setting(variable, field, group is not None)
        if group is not None:
            yield from _walk(group, variable + delimiter, delimiter)


def settings_variables(settings_type: type[ServiceSettings]) -> dict[str, Setting]:
    config = settings_type.model_config
    prefix = str(config.get("env_prefix") or "")
    delimiter = str(config.get("env_nested_delimiter") or "__")
    return {s.variable: s for s in _walk(settings_type, prefix.upper(), delimiter)}


def as_setting(variable: str, known: Mapping[str, Setting]) -> str:
    """`ARC_X_FILE` names the setting `ARC_X` unless `ARC_X_FILE` is a setting itself."""
    if variable not in known and variable.endswith(FILE_SUFFIX):
        return variable[: -len(FILE_SUFFIX)]
    return variable


# -- what the deployment files set ------------------------------------------------------------


def compose_service_settings(service: str) -> str | None:
    """The settings a compose service runs with (tts-2 is a TTS; migrate runs in the brain's
    image and reads its Postgres settings); None for servers that are not Arc services."""
    if service.startswith("tts"):
        return "tts"
    if service == "migrate":
        return "brain"
    return service if service in SETTINGS else None


def compose_environments(rendered: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """{compose service: its environment} for every Arc service."""
    found = {}
    for name, service in (rendered.get("services") or {}).items():
        if compose_service_settings(name) is not None:
            env = service.get("environment") or {}
            found[name] = {k: "" if v is None else str(v) for k, v in env.items()}
    return found


@dataclass(frozen=True)
class Container:
    workload: str
    name: str
    service: str
    env: dict[str, str]  # literal values; secretKeyRef values are "<secret>"


def kubernetes_containers(docs: list[dict[str, Any]]) -> list[Container]:
    """Every container of an Arc workload with the environment it gets (env and envFrom
    ConfigMaps resolved against the render)."""
    config_maps = {
        d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"
    }
    containers = []
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        workload = doc["metadata"]["name"]
        service = workload.removeprefix("arc-")
        if service not in SETTINGS:
            continue
        spec = doc["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            env: dict[str, str] = {}
            for source in c.get("envFrom", []):
                env |= config_maps[source["configMapRef"]["name"]]
            for item in c.get("env", []):
                env[item["name"]] = item.get("value", "<secret>")
            # An init container running the migrations reads the brain's Postgres settings.
            owner = "brain" if c["name"] == "migrate" else service
            containers.append(Container(workload, c["name"], owner, env))
    return containers
