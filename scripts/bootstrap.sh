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
# Debian packages some tests need, installed only where this user may and apt-get exists; a
# test whose tool is missing is skipped and says why.
debian_tool() {  # command, package, what needs it
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 0
  echo "▸ installing $2 from Debian ($3)"
  (apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1; }) \
    || echo "  $2 could not be installed; the $3 will be skipped"
}
# Chromium drives the browser-page test (a fake microphone fed from a WAV file).
# cmake and ninja build the local language model server (arc_stack.llm) once.
debian_tool cmake cmake "local LLM build"
debian_tool ninja ninja-build "local LLM build"
debian_tool chromium chromium "browser-page test"
# Firefox ESR runs the talk page in a second engine (WebDriver BiDi, built into Firefox).
debian_tool firefox-esr firefox-esr "Firefox page test"
# Firefox starts an AudioContext (the page's meters) only with an audio output: the test gives
# it a private PulseAudio daemon whose one output is a null sink.
debian_tool pulseaudio pulseaudio "Firefox page test"
# espeak-ng is the second voice of the speech tests (a formant synthesiser that sounds
# nothing like Piper): word error rate, end of turn, the voice benchmark.
debian_tool espeak-ng espeak-ng "speech-recognition accuracy tests"
