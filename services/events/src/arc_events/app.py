"""HTTP entry point: /healthz and /metrics over the events service, which the lifespan
starts and stops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arc_common.telemetry import metrics_payload
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from arc_events.service import EventsService
from arc_events.settings import EventsSettings


def create_app(settings: EventsSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = EventsService(settings)
        app.state.service = service
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="arc-events", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        service: EventsService = request.app.state.service
        healthy, body = service.health()
        return JSONResponse(body, status_code=200 if healthy else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        service: EventsService = request.app.state.service
        payload, content_type = metrics_payload(service.metrics.registry)
        return Response(payload, media_type=content_type)

    return app
