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
# The browser page's LiveKit JavaScript client, pinned in services/voice/web/package-lock.json
# and served by the voice worker.
if [ ! -f services/voice/web/node_modules/livekit-client/dist/livekit-client.umd.js ]; then
  echo "▸ installing the browser page's LiveKit client from npm"
  npm ci --prefix services/voice/web --no-audit --no-fund --silent
fi
# Chromium drives the browser-page test (a fake microphone fed from a WAV file). Debian's
# package, installed only where this user may and the package manager exists.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "▸ installing chromium from Debian (browser-page test)"
  (apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }) \
    || echo "  chromium could not be installed; the browser-page test will be skipped"
fi
