"""Where the local mesh keeps its state: `.arc/` in the checkout unless ARC_STATE_DIR says."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "migrations").is_dir() and (parent / "Makefile").is_file():
            return parent
    return Path.cwd()


def wheel_binary(name: str) -> Path | None:
    """A program a wheel installs as a script beside the interpreter of this environment,
    else one on PATH; None when there is neither."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    return None if found is None else Path(found)


def state_dir() -> Path:
    configured = os.environ.get("ARC_STATE_DIR")
    path = Path(configured) if configured else repo_root() / ".arc"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def cache_dir() -> Path:
    """Downloads and builds shared by every checkout on this machine (Pulsar jars, LiveKit)."""
    configured = os.environ.get("ARC_CACHE_DIR")
    base = Path(configured) if configured else Path.home() / ".cache" / "arc"
    base.mkdir(parents=True, exist_ok=True)
    return base.resolve()
