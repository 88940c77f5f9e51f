#!/bin/bash
# Builds one service image with the real Dockerfile on a machine that cannot pull from any
# container registry and cannot start containers (no OCI runtime), then runs the image's own
# entry point and HEALTHCHECK from its filesystem (docs/deployment.md, "Images").
#
#   sudo deployments/docker/build-without-registry.sh [tts]     # from the repository root
#
# How: the base images are made locally instead of pulled. A Debian bookworm root filesystem
# from Debian's mirror (debootstrap, with python3.11, the Python the lock targets) stands in
# for python:3.11-slim and debian:bookworm-slim, Debian's nodejs/npm on it for node, and this
# machine's uv binary for ghcr.io/astral-sh/uv. CA certificates in
# /usr/local/share/ca-certificates are trusted inside (a TLS-inspecting egress proxy). podman
# builds with `--isolation chroot`, which needs no OCI runtime. Where crun cannot start a
# container (here: cgroups in hybrid mode, no CAP_SYS_RESOURCE), the image runs by chroot into
# a created container's root filesystem, as the image's user, on the host network, against
# a nats-server from the locked wheel. It prints the image size, the time to a healthy
# /healthz, the RSS, and the exit status after SIGTERM.
#
# Needs root, apt-get, podman (apt-get install podman debootstrap), the repository's .venv.
# The tts service is the default: it needs NATS only.
set -euo pipefail

SERVICE=${1:-tts}
case "$SERVICE" in
    tts) HTTP_PORT=8082 ;;
    *) echo "only tts runs here without Postgres/Pulsar/LiveKit; build others with make images" >&2; exit 2 ;;
esac
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/tmp/arc-build-without-registry}
NATS_PORT=${NATS_PORT:-24222}
CHECK_PORT=${CHECK_PORT:-28082}
# --format docker: the OCI image format has no HEALTHCHECK (podman drops it with a warning).
BUILD=(podman build --format docker --isolation chroot --network host --ulimit nofile=4096:4096)
mkdir -p "$WORK"

# --- local stand-ins for the base images -----------------------------------------------------
if ! podman image exists localhost/arc-python-base:bookworm; then
    if [ ! -x "$WORK/rootfs/usr/bin/python3.11" ]; then
        debootstrap --variant=minbase --include=python3.11,ca-certificates bookworm \
            "$WORK/rootfs" http://deb.debian.org/debian > "$WORK/debootstrap.log"
    fi
    tar -C "$WORK/rootfs" -c . | podman import - localhost/arc-debian:bookworm > /dev/null
    mkdir -p "$WORK/base"
    cp /usr/local/share/ca-certificates/*.crt "$WORK/base/" 2>/dev/null || true
    cat > "$WORK/base/Containerfile" <<'EOF'
FROM localhost/arc-debian:bookworm
COPY . /usr/local/share/ca-certificates/
RUN rm -f /usr/local/share/ca-certificates/Containerfile && update-ca-certificates
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
EOF
    "${BUILD[@]}" -q -t localhost/arc-python-base:bookworm "$WORK/base" > /dev/null
fi
if ! podman image exists localhost/arc-node:bookworm; then
    mkdir -p "$WORK/node"
    cat > "$WORK/node/Containerfile" <<'EOF'
FROM localhost/arc-python-base:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
EOF
    "${BUILD[@]}" -q -t localhost/arc-node:bookworm "$WORK/node" > /dev/null
fi
# The uv binary itself (pyenv and the like put a shell shim on PATH; UV_BIN= overrides).
UV_BIN=${UV_BIN:-$(command -v uv)}
if ! head -c 4 "$UV_BIN" | grep -q ELF && command -v pyenv > /dev/null; then
    UV_BIN=$(pyenv which uv)
fi
head -c 4 "$UV_BIN" | grep -q ELF || { echo "set UV_BIN to the uv executable" >&2; exit 2; }
mkdir -p "$WORK/uv" && cp "$UV_BIN" "$WORK/uv/uv"
printf 'FROM scratch\nCOPY uv /uv\n' > "$WORK/uv/Containerfile"
"${BUILD[@]}" -q -t localhost/arc-uv:local "$WORK/uv" > /dev/null

# --- the image, from the real Dockerfile -----------------------------------------------------
began=$(date +%s)
"${BUILD[@]}" -f "$REPO/deployments/docker/Dockerfile" --target service \
    --build-arg SERVICE="$SERVICE" --build-arg HTTP_PORT="$HTTP_PORT" \
    --build-arg PYTHON_IMAGE=localhost/arc-python-base:bookworm \
    --build-arg DEBIAN_IMAGE=localhost/arc-python-base:bookworm \
    --build-arg NODE_IMAGE=localhost/arc-node:bookworm \
    --build-arg UV_IMAGE=localhost/arc-uv:local \
    -t "localhost/arc-$SERVICE:dev" "$REPO" > "$WORK/build-$SERVICE.log"
echo "built localhost/arc-$SERVICE:dev in $(( $(date +%s) - began )) s;" \
    "size $(podman image inspect "localhost/arc-$SERVICE:dev" --format '{{.Size}}') bytes" \
    "(base $(podman image inspect localhost/arc-python-base:bookworm --format '{{.Size}}') bytes)"
podman image inspect "localhost/arc-$SERVICE:dev" \
    --format 'user {{.Config.User}}, stop signal {{.Config.StopSignal}}, healthcheck {{.HealthCheck.Test}}'

# --- run its entry point and health check ----------------------------------------------------
"$REPO/.venv/bin/nats-server" -a 127.0.0.1 -p "$NATS_PORT" > "$WORK/nats.log" 2>&1 &
NATS_PID=$!
CTR=$(podman create "localhost/arc-$SERVICE:dev")
MNT=$(podman mount "$CTR")
mount --bind /proc "$MNT/proc"
mount --bind /dev "$MNT/dev"
cleanup() {
    umount "$MNT/proc" "$MNT/dev" 2>/dev/null || true
    podman umount "$CTR" > /dev/null 2>&1 || true
    podman rm "$CTR" > /dev/null 2>&1 || true
    kill "$NATS_PID" 2>/dev/null || true
}
trap cleanup EXIT
mapfile -t IMAGE_ENV < <(podman inspect "$CTR" --format '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
USER_SPEC=$(podman inspect "$CTR" --format '{{.Config.User}}')
in_image() {
    env -i "${IMAGE_ENV[@]}" ARC_NATS__URL="nats://127.0.0.1:$NATS_PORT" \
        "ARC_$(echo "$SERVICE" | tr '[:lower:]' '[:upper:]')__HTTP_PORT=$CHECK_PORT" \
        chroot --userspec="$USER_SPEC" "$MNT" "$@"
}
start=$(date +%s.%N)
in_image /app/bin/entrypoint.sh > "$WORK/$SERVICE.log" 2>&1 &
RUN_PID=$!
healthy=""
for _ in $(seq 1 240); do
    if in_image python /app/bin/healthcheck.py 2>/dev/null; then
        healthy=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
        break
    fi
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.5
done
if [ -z "$healthy" ]; then
    echo "not healthy; log: $WORK/$SERVICE.log" >&2
    tail -5 "$WORK/$SERVICE.log" >&2
    exit 1
fi
SERVICE_PID=$(pgrep -f "python -m arc_$SERVICE" | head -1)
echo "HEALTHCHECK passed $healthy s after start; RSS $(ps -o rss= -p "$SERVICE_PID") KiB"
kill -TERM "$SERVICE_PID"
set +e
wait "$RUN_PID"
code=$?
echo "exit status after SIGTERM: $code"
exit "$code"
