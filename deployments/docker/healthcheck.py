"""The image's HEALTHCHECK: GET /healthz on the service's own port; exit 0 when it answers 200.

The port is the service's `ARC_<SERVICE>__HTTP_PORT` when set, else the image's default."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    service = os.environ["IMAGE_SERVICE"].upper()
    port = os.environ.get(f"ARC_{service}__HTTP_PORT") or os.environ["IMAGE_HTTP_PORT"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2.5) as reply:
            return 0 if reply.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthz on port {port}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
