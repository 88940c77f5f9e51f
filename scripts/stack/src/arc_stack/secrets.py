"""The local mesh's own secrets, made once under the state directory and never committed."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def local_api_key(state: Path) -> str:
    """The key the local services ask of every non-public HTTP route (`ARC_HTTP__API_KEYS`):
    made on first use, readable by its owner only, the same on every `make run` so links
    and scripts keep working."""
    path = state / "api-key"
    _made_once(path, secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def _made_once(path: Path, make: str) -> None:
    """Write `make` to `path` (0600) unless it exists; O_EXCL so two commands starting at
    once cannot each keep a different secret."""
    if path.is_file():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(make)


def local_livekit_keys(state: Path) -> tuple[str, str]:
    """(API key, secret) of the local LiveKit server and everything that mints tokens for it:
    made on first use, so the well-known dev keys are never what `make run` serves."""
    path = state / "livekit-keys.json"
    _made_once(
        path,
        json.dumps({"api_key": f"arc{secrets.token_hex(6)}", "secret": secrets.token_urlsafe(32)}),
    )
    keys = json.loads(path.read_text())
    return str(keys["api_key"]), str(keys["secret"])
