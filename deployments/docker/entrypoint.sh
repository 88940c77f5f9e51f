#!/bin/sh
# Entry point of every Arc service image (docs/deployment.md, "Secrets").
#
# 1. Secrets from files: for each ARC_*_FILE variable (other than the settings whose own
#    names end in _FILE, listed in KEEP_FILE_SETTINGS) and PGPASSWORD_FILE, the file's content
#    becomes the variable without _FILE, and the _FILE variable is removed:
#    ARC_LIVEKIT__API_SECRET_FILE=/run/secrets/livekit_api_secret sets ARC_LIVEKIT__API_SECRET,
#    PGPASSWORD_FILE sets libpq's PGPASSWORD. Other *_FILE variables (SSL_CERT_FILE...) are
#    not ours and stay as they are.
# 2. Container defaults the local mesh does not want: listen on every interface, and the
#    paths the image lays out. Anything already set wins.
# 3. `migrate` runs the database migrations once and exits; anything else starts the service
#    (`python -m arc_<service>` with the arguments given, e.g. `relay` for arc_events).
set -eu

KEEP_FILE_SETTINGS="ARC_NATS__CREDS_FILE ARC_NATS__TLS_CA_FILE ARC_NATS__TLS_CERT_FILE ARC_NATS__TLS_KEY_FILE"

for name in $(env | sed -n 's/^\(ARC_[A-Za-z0-9_]*_FILE\|PGPASSWORD_FILE\)=.*/\1/p'); do
    case " $KEEP_FILE_SETTINGS " in *" $name "*) continue ;; esac
    target="${name%_FILE}"
    eval "path=\${$name}"
    if [ ! -r "$path" ]; then
        echo "entrypoint: $name points to $path, which cannot be read" >&2
        exit 2
    fi
    value="$(cat "$path")"
    export "$target=$value"
    unset "$name"
done

service="${IMAGE_SERVICE:?the image was built without SERVICE}"
upper="$(echo "$service" | tr '[:lower:]' '[:upper:]')"
eval "host=\${ARC_${upper}__HTTP_HOST:-0.0.0.0}"
export "ARC_${upper}__HTTP_HOST=$host"
case "$service" in
    voice) export ARC_VOICE__WEB_CLIENT_JS="${ARC_VOICE__WEB_CLIENT_JS:-/app/web/livekit-client.umd.js}" ;;
    tts) export ARC_TTS__SPLIT_CACHE_DIR="${ARC_TTS__SPLIT_CACHE_DIR:-/var/cache/arc/tts}" ;;
esac

if [ "${1:-}" = "migrate" ]; then
    exec python /app/bin/migrate.py
fi
exec python -m "arc_${service}" "$@"
