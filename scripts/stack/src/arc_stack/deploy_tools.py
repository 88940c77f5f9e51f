"""What validating the deployment files needs (docs/deployment.md), installed by `arc install`,
and the checks `make compose-config` and `make k8s-validate` run (the tests in
`tests/deployment/` run the same functions).

- Debian's `docker-compose` (1.29.2, `apt-get`): renders `deployments/docker/compose.yaml`
  for each profile. `config` needs no Docker daemon.
- `kustomize`, built with `go install` from the Go module proxy into the arc cache: renders the
  Kubernetes base and overlays. The rendered objects are checked against the Kubernetes
  schemas shipped by the `kubernetes-validate` wheel (a dev dependency).

A stamp under the arc cache (named after the versions) makes a repeated install a no-op.

`python -m arc_stack.deploy_tools install|compose-config|k8s-validate` is what the Make
targets run.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arc_stack.install_lock import exclusive
from arc_stack.livekit import go_binary
from arc_stack.paths import cache_dir, repo_root
from arc_stack.server import ServerStartError, run_step

KUSTOMIZE_VERSION = "v5.8.1"
KUSTOMIZE_PACKAGE = "sigs.k8s.io/kustomize/kustomize/v5"
COMPOSE_APT_PACKAGE = "docker-compose"
# The Kubernetes release whose schemas the manifests are validated against (one that the
# kubernetes-validate wheel ships; docs/deployment.md says which clusters that covers).
KUBERNETES_VERSION = "1.33.0"
INSTALL_TIMEOUT_S = 1800.0

# The compose profiles and the Kubernetes overlays every check covers.
COMPOSE_PROFILES = ("infra", "services", "observability", "full")
KUSTOMIZE_TARGETS = ("base", "overlays/dev", "overlays/prod")
# Secrets a render uses but deliberately does not contain: the cluster's operator creates
# them (docs/deployment.md, "Secrets"). Every other reference must resolve in the render.
EXTERNAL_SECRETS: dict[str, dict[str, frozenset[str]]] = {
    "base": {
        "arc-secrets": frozenset({"postgres-password", "livekit-api-secret", "http-api-keys"})
    },
    "overlays/dev": {},
    "overlays/prod": {
        "arc-secrets": frozenset(
            {"postgres-password", "livekit-api-secret", "http-api-keys"}
            | {f"nats-password-{user}" for user in ("voice", "brain", "tts", "events")}
        )
    },
}


def tools_dir() -> Path:
    return cache_dir() / "deploy-tools"


def kustomize_binary() -> Path:
    return tools_dir() / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"


def _stamp() -> Path:
    return tools_dir() / f"{KUSTOMIZE_VERSION}+{COMPOSE_APT_PACKAGE}.done"


def docker_compose_binary() -> str | None:
    return shutil.which("docker-compose")


async def install_deploy_tools(log_dir: Path, say: Callable[[str], None] = print) -> None:
    """Install Debian's docker-compose (when missing) and build kustomize (when missing)."""
    stamp = _stamp()
    if stamp.is_file() and docker_compose_binary() and kustomize_binary().is_file():
        return
    began = time.monotonic()
    async with exclusive(tools_dir() / ".lock"):
        if stamp.is_file() and docker_compose_binary() and kustomize_binary().is_file():
            return  # another process installed them while we waited
        log_path = log_dir / "deploy-tools-install.log"
        if docker_compose_binary() is None:
            await _install_compose(log_path)
        if not kustomize_binary().is_file():
            await _install_kustomize(log_path)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    say(f"✓ deployment tools installed ({time.monotonic() - began:.1f}s)")


async def _install_compose(log_path: Path) -> None:
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ServerStartError(
            "deploy tools: docker-compose is not on PATH and cannot be installed here "
            "(needs apt-get as root: `apt-get install docker-compose`)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt-get (Prometheus's install, an operator) may hold dpkg's lock: wait for it.
    wait = ["-o", "DPkg::Lock::Timeout=300"]
    install = [apt, *wait, "install", "-y", "--no-install-recommends", COMPOSE_APT_PACKAGE]
    code = await _run(install, log_path, env, check=False)
    if code != 0:  # stale package lists: refresh once and retry
        await _run([apt, *wait, "update"], log_path, env)
        await _run(install, log_path, env)
    if docker_compose_binary() is None:
        raise ServerStartError(
            f"deploy tools: `apt-get install {COMPOSE_APT_PACKAGE}` left no docker-compose on "
            f"PATH; log: {log_path}"
        )


async def _install_kustomize(log_path: Path) -> None:
    target = kustomize_binary()
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOBIN": str(target.parent),
        "CGO_ENABLED": "0",
        "GOFLAGS": "-buildvcs=false",
        "GOTOOLCHAIN": "local",
    }
    await _run(
        [go_binary(), "install", f"{KUSTOMIZE_PACKAGE}@{KUSTOMIZE_VERSION}"],
        log_path,
        env,
        cwd=target.parent,
    )


async def _run(
    argv: list[str],
    log_path: Path,
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    check: bool = True,
) -> int:
    words = [a for a in argv[1:] if not a.startswith("-") and "::" not in a][:2]
    label = " ".join([Path(argv[0]).name, *words])
    return await run_step(
        argv,
        log_path,
        what="deploy tools",
        label=label,
        timeout_s=INSTALL_TIMEOUT_S,
        env=env,
        cwd=cwd,
        nice=True,
        check=check,
    )


# -- checks -----------------------------------------------------------------------------------


class DeploymentCheckError(RuntimeError):
    """A deployment file does not render or does not validate; the message says which."""


def docker_dir() -> Path:
    return repo_root() / "deployments" / "docker"


def kubernetes_dir() -> Path:
    return repo_root() / "deployments" / "kubernetes"


def _module(name: str) -> Any:
    """PyYAML and kubernetes-validate (dev dependencies; neither ships type information)."""
    return importlib.import_module(name)


def load_yaml(text: str) -> Any:
    """One YAML document, parsed (PyYAML's safe loader)."""
    return _module("yaml").safe_load(text)


def _tool(path: str | None, name: str) -> str:
    if path is None or not Path(path).is_file():
        raise DeploymentCheckError(f"{name} is not installed: run `make install`")
    return path


def compose_config(
    files: Sequence[Path],
    profile: str,
    *,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`docker-compose -f ... --profile <profile> config`, parsed; raises with its stderr."""
    yaml = _module("yaml")
    compose = _tool(docker_compose_binary(), "docker-compose")
    argv = [compose]
    for f in files:
        argv += ["-f", str(f)]
    argv += ["--profile", profile, "config"]
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("ARC_", "COMPOSE_"))}
    result = subprocess.run(
        argv, capture_output=True, text=True, env={**run_env, **(env or {})}, check=False
    )
    if result.returncode != 0:
        raise DeploymentCheckError(
            f"docker-compose config (profile {profile}, files "
            f"{', '.join(f.name for f in files)}) failed: {result.stderr.strip()}"
        )
    rendered: dict[str, Any] = yaml.safe_load(result.stdout)
    missing = missing_compose_secrets(rendered)
    if missing:
        raise DeploymentCheckError(
            f"profile {profile}: " + "; ".join(f"secret {m}" for m in missing)
        )
    return rendered


def missing_compose_secrets(rendered: Mapping[str, Any]) -> list[str]:
    """Secrets a rendered compose file uses that it does not define, or whose file does not
    exist (docker-compose itself only notices at `up`). Each entry names the secret."""
    defined: Mapping[str, Any] = rendered.get("secrets") or {}
    problems: list[str] = []
    used: dict[str, list[str]] = {}
    for name, service in (rendered.get("services") or {}).items():
        for ref in service.get("secrets") or []:
            source = ref["source"] if isinstance(ref, dict) else ref
            used.setdefault(source, []).append(name)
    for secret, services in sorted(used.items()):
        users = ", ".join(sorted(services))
        spec = defined.get(secret)
        if spec is None:
            problems.append(f"'{secret}' (used by {users}) is not defined")
        elif "file" in spec and not Path(spec["file"]).is_file():
            problems.append(f"'{secret}' (used by {users}): file {spec['file']} does not exist")
    return problems


def kustomize_build(target: Path) -> list[dict[str, Any]]:
    """`kustomize build <target>`, parsed into its objects; raises with kustomize's stderr."""
    yaml = _module("yaml")
    kustomize = _tool(str(kustomize_binary()), "kustomize")
    result = subprocess.run(
        [kustomize, "build", str(target)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise DeploymentCheckError(f"kustomize build {target} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate_kubernetes(
    objects: Iterable[Mapping[str, Any]],
    external_secrets: Mapping[str, frozenset[str]] | None = None,
) -> list[str]:
    """Each object against the Kubernetes schemas (strict: unknown fields are errors), and
    every Secret or ConfigMap an object refers to against those rendered beside it. Returns
    the problems, each naming the object (empty when all is well)."""
    kubernetes_validate = _module("kubernetes_validate")
    docs = list(objects)
    problems: list[str] = []
    for doc in docs:
        where = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        try:
            kubernetes_validate.validate(dict(doc), KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            problems.append(f"{where}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{where}: {exc}")
    problems += missing_kubernetes_refs(docs, external_secrets)
    return problems


@dataclass(frozen=True)
class _Ref:
    kind: str  # Secret or ConfigMap
    name: str
    key: str | None
    optional: bool


def _refs(value: Any) -> Iterable[_Ref]:
    """Every secretKeyRef, configMapKeyRef, envFrom and volume source below `value`."""
    if isinstance(value, dict):
        for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            ref = value.get(field)
            if isinstance(ref, dict):
                yield _Ref(kind, ref["name"], ref.get("key"), bool(ref.get("optional")))
        for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            ref = value.get(field)
            if isinstance(ref, dict):
                yield _Ref(kind, ref["name"], None, bool(ref.get("optional")))
        secret = value.get("secret")
        if isinstance(secret, dict) and "secretName" in secret:
            yield _Ref("Secret", secret["secretName"], None, bool(secret.get("optional")))
        config_map = value.get("configMap")
        if isinstance(config_map, dict) and "name" in config_map:
            yield _Ref("ConfigMap", config_map["name"], None, bool(config_map.get("optional")))
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def missing_kubernetes_refs(
    docs: Sequence[Mapping[str, Any]],
    external_secrets: Mapping[str, frozenset[str]] | None = None,
) -> list[str]:
    """Secrets and ConfigMaps (and their keys) that workloads use but neither the render nor
    `external_secrets` (name -> keys, created outside it) provides."""
    keys: dict[tuple[str, str], set[str]] = {
        ("Secret", name): set(secret_keys) for name, secret_keys in (external_secrets or {}).items()
    }
    for doc in docs:
        if doc.get("kind") in ("Secret", "ConfigMap"):
            data = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
            keys[(str(doc["kind"]), str(doc["metadata"]["name"]))] = set(data)
    problems: list[str] = []
    for doc in docs:
        if doc.get("kind") in ("Secret", "ConfigMap"):
            continue
        where = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        for ref in _refs(doc.get("spec")):
            if ref.optional:
                continue
            present = keys.get((ref.kind, ref.name))
            if present is None:
                problems.append(f"{where}: {ref.kind} '{ref.name}' is not defined")
            elif ref.key is not None and ref.key not in present:
                problems.append(f"{where}: {ref.kind} '{ref.name}' has no key '{ref.key}'")
    return sorted(set(problems))


def profile_services(rendered: Mapping[str, Any], profile: str) -> set[str]:
    """The services `up --profile <profile>` starts: docker-compose 1.x's `config` prints
    every service with its `profiles`, so the selection is made here, as `up` makes it."""
    services: Mapping[str, Any] = rendered.get("services") or {}
    return {
        name
        for name, service in services.items()
        if not service.get("profiles") or profile in service["profiles"]
    }


def outside_profile_dependencies(rendered: Mapping[str, Any], profile: str) -> list[str]:
    """Dependencies of a profile's services that the profile does not start (docker-compose
    1.x refuses to start such a service)."""
    active = profile_services(rendered, profile)
    services: Mapping[str, Any] = rendered.get("services") or {}
    return sorted(
        f"{name} depends on {dependency}"
        for name in active
        for dependency in services[name].get("depends_on") or {}
        if dependency not in active
    )


def compose_files(environment: str) -> list[Path]:
    """The files of one environment: the base with profiles and its overlay."""
    return [docker_dir() / "compose.yaml", docker_dir() / f"compose.{environment}.yaml"]


def production_placeholders(folder: Path) -> dict[str, str]:
    """Variables that render the production overlay without real secrets: a SECRETS_DIR of
    placeholder files, one per secret the overlay declares."""
    yaml = _module("yaml")
    overlay = yaml.safe_load((docker_dir() / "compose.production.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for name in overlay.get("secrets") or {}:
        (folder / name).write_text("placeholder\n")
    return {"SECRETS_DIR": str(folder), "LIVEKIT_PUBLIC_URL": "wss://livekit.example.com"}


def check_compose(say: Callable[[str], None] = print) -> None:
    """Every profile renders with the development and the production overlay, starts all it
    depends on, and has its secrets. Production uses SECRETS_DIR and LIVEKIT_PUBLIC_URL when
    set (an operator checking the real folder), else placeholders."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="arc-compose-") as scratch:
        production_env = production_placeholders(Path(scratch))
        production_env |= {
            k: os.environ[k] for k in ("SECRETS_DIR", "LIVEKIT_PUBLIC_URL") if k in os.environ
        }
        for profile in COMPOSE_PROFILES:
            for environment, env in (("dev", {}), ("production", production_env)):
                rendered = compose_config(compose_files(environment), profile, env=env)
                outside = outside_profile_dependencies(rendered, profile)
                if outside:
                    raise DeploymentCheckError(
                        f"compose {environment}, profile {profile}: " + "; ".join(outside)
                    )
                names = ", ".join(sorted(profile_services(rendered, profile)))
                say(f"✓ compose {environment} --profile {profile}: {names}")


def check_kubernetes(say: Callable[[str], None] = print) -> None:
    for target in KUSTOMIZE_TARGETS:
        objects = kustomize_build(kubernetes_dir() / target)
        problems = validate_kubernetes(objects, EXTERNAL_SECRETS[target])
        if problems:
            raise DeploymentCheckError(f"{target}:\n  " + "\n  ".join(problems))
        say(f"✓ kubernetes {target}: {len(objects)} objects valid for {KUBERNETES_VERSION}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else ""
    try:
        if command == "install":
            from arc_stack.paths import state_dir

            asyncio.run(install_deploy_tools(state_dir() / "logs"))
        elif command == "compose-config":
            check_compose()
        elif command == "k8s-validate":
            check_kubernetes()
        else:
            print(
                "usage: python -m arc_stack.deploy_tools install|compose-config|k8s-validate",
                file=sys.stderr,
            )
            return 2
    except (ServerStartError, DeploymentCheckError) as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
