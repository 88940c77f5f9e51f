#!/usr/bin/env bash
# Makes a fresh machine ready: uv (pinned, from PyPI) and the locked Python environment.
# Idempotent and quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  echo "▸ installing uv $UV_VERSION from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
uv sync --frozen --all-packages --quiet
