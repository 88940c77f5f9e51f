"""HTTP entry point: /healthz and /metrics over a running events service."""

from __future__ import annotations

from arc_common.telemetry import metrics_payload
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from arc_events.service import EventsService


def create_app(service: EventsService) -> FastAPI:
    app = FastAPI(title="arc-events")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        healthy, body = service.health()
        return JSONResponse(body, status_code=200 if healthy else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        payload, content_type = metrics_payload(service.metrics.registry)
        return Response(payload, media_type=content_type)

    return app
