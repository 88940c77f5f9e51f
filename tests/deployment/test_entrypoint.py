"""The service images' entry point (deployments/docker/entrypoint.sh), run with a stand-in
`python`: secret files become settings, foreign *_FILE variables are left alone, container
defaults are set, and an unreadable secret file stops it with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from arc_stack.deploy_tools import docker_dir

pytestmark = pytest.mark.integration


def _entrypoint(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Runs the entry point with a stand-in `python` that prints its arguments and the
    settings it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "python"
    fake.write_text(
        textwrap.dedent("""\
            #!/bin/sh
            echo "argv: $*"
            env | grep -E '^(ARC_|PGPASSWORD|SSL_CERT)' | sort
            """)
    )
    fake.chmod(0o755)
    base = {"PATH": f"{bin_dir}:/usr/bin:/bin", "IMAGE_SERVICE": "voice"}
    return subprocess.run(
        ["sh", str(docker_dir() / "entrypoint.sh"), *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def test_entrypoint_reads_secret_files_into_settings(tmp_path: Path) -> None:
    secret = tmp_path / "livekit_api_secret"
    secret.write_text("s3cret")
    password = tmp_path / "postgres_password"
    password.write_text("pw")
    done = _entrypoint(
        tmp_path,
        {
            "ARC_LIVEKIT__API_SECRET_FILE": str(secret),
            "PGPASSWORD_FILE": str(password),
            "ARC_NATS__CREDS_FILE": "/run/secrets/nats.creds",
            "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        },
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "argv: -m arc_voice"
    assert "ARC_LIVEKIT__API_SECRET=s3cret" in lines and "PGPASSWORD=pw" in lines
    assert "ARC_NATS__CREDS_FILE=/run/secrets/nats.creds" in lines  # a setting of its own
    assert "SSL_CERT=" not in done.stdout  # not ours: left alone
    assert not any(line.startswith("ARC_LIVEKIT__API_SECRET_FILE=") for line in lines)
    assert "ARC_VOICE__HTTP_HOST=0.0.0.0" in lines


def test_entrypoint_names_an_unreadable_secret_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    done = _entrypoint(tmp_path, {"ARC_NATS__TOKEN_FILE": str(missing)}, "relay")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"entrypoint: ARC_NATS__TOKEN_FILE points to {missing}, which cannot be read"
    )
    assert os.access(docker_dir() / "entrypoint.sh", os.X_OK)
