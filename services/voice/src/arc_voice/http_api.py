"""HTTP entry points: health, Prometheus metrics, joining rooms, tokens for the browser page,
the page itself, the WebSocket voice endpoint, and the sessions API with its console."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from arc_common.errors import BadRequest, Busy, Unsupported
from arc_common.http_errors import install_error_handlers
from arc_common.http_security import HttpGuard
from arc_common.telemetry import metrics_payload
from fastapi import Depends, FastAPI, Query, WebSocket
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from arc_voice.caller import participant_token
from arc_voice.dispatch import DispatchClient
from arc_voice.sessions import SessionStore
from arc_voice.sessions_api import sessions_router, store_for_worker
from arc_voice.settings import LiveKitSettings, VoiceOptions
from arc_voice.worker import VoiceWorker, checked_room_name
from arc_voice.ws_api import serve_socket

_IDENTITY = re.compile(r"[A-Za-z0-9_.@-]{1,128}")


class Health(BaseModel):
    healthy: bool
    detail: dict[str, Any]


class TokenResponse(BaseModel):
    url: str
    room: str
    identity: str
    token: str


def static_dir() -> Path:
    return Path(str(resources.files("arc_voice").joinpath("static")))


def default_client_js() -> Path:
    """`services/voice/web/node_modules/...` of this checkout (the package is installed
    editable in the workspace, so the source tree is beside it)."""
    web = Path(__file__).resolve().parents[2] / "web"
    return web / "node_modules" / "livekit-client" / "dist" / "livekit-client.umd.js"


def checked_identity(identity: str) -> str:
    if not _IDENTITY.fullmatch(identity):
        raise BadRequest("identity must be 1..128 letters, digits or _ . @ -")
    if identity.startswith("arc-agent"):
        raise BadRequest("identities starting with 'arc-agent' are reserved for the agent")
    return identity


def create_app(
    options: VoiceOptions,
    livekit: LiveKitSettings,
    worker: Callable[[], VoiceWorker | None],
    health: Callable[[], Health],
    guard: HttpGuard,
    sessions: Callable[[], SessionStore] | None = None,
    dispatch: Callable[[], DispatchClient | None] = lambda: None,
) -> FastAPI:
    """Room control, replies, tokens and the sessions API need an API key (`guard`), tokens
    are rate-limited per client too; health, metrics, the talk page and the sessions console
    page are public (the pages call the API with the key their link carries, see
    static/talk.js). `sessions` defaults to a store over the running worker's pool. Under
    LiveKit dispatch (`dispatch` gives the client) the join and token routes ask LiveKit to
    dispatch the agent instead of joining this worker to the room."""
    app = FastAPI(title="Arc voice worker", version="1")

    install_error_handlers(app)
    guard.install(app)
    private = [Depends(guard.require_key)]

    def running() -> VoiceWorker:
        current = worker()
        if current is None:
            raise Busy("the voice worker is still starting")
        return current

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        result = health()
        return JSONResponse(result.model_dump(), status_code=200 if result.healthy else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = metrics_payload()
        return Response(body, media_type=content_type)

    @app.get("/rooms", dependencies=private)
    async def rooms() -> dict[str, Any]:
        current = running()
        return {
            "rooms": {name: sorted(agent.conversations) for name, agent in current.rooms.items()}
        }

    @app.get("/rooms/{room}/people/{identity}/replies", dependencies=private, response_model=None)
    async def replies(room: str, identity: str) -> dict[str, Any] | RedirectResponse:
        """Where each of the agent's replies to this person spent its time (`make talk`
        prints the latest); empty when the agent is not talking to them."""
        agent = running().rooms.get(checked_room_name(room))
        dispatcher = dispatch()
        elsewhere = (
            None if agent is not None or dispatcher is None else dispatcher.peers.serving(room)
        )
        if elsewhere is not None:
            # Another worker serves the room (LiveKit dispatch): its record, not ours.
            return RedirectResponse(f"{elsewhere}/rooms/{room}/people/{identity}/replies", 307)
        conversation = None if agent is None else agent.conversations.get(identity)
        timings = [] if conversation is None else conversation.log.replies
        return {"room": room, "identity": identity, "replies": [t.to_json() for t in timings]}

    @app.post("/rooms/{room}/agent", dependencies=private)
    async def join(room: str) -> dict[str, Any]:
        """The agent joins `room` (a no-op when it is already there); under LiveKit dispatch,
        LiveKit is asked to send one (to whichever worker has room for it)."""
        name = checked_room_name(room)
        dispatcher = dispatch()
        if dispatcher is not None:
            await dispatcher.dispatch(name)
            return {"room": name, "joined": False, "dispatched": True}
        await running().join(name)
        return {"room": name, "joined": True}

    @app.delete("/rooms/{room}/agent", dependencies=private)
    async def leave(room: str) -> dict[str, Any]:
        name = checked_room_name(room)
        return {"room": name, "left": await running().leave(name)}

    @app.get("/token", dependencies=[Depends(guard.rate_limit), *private])
    async def token(
        room: str = Query(min_length=1, max_length=256),
        identity: str = Query(min_length=1, max_length=128),
    ) -> TokenResponse:
        """A participant token for the browser page; the agent joins the room first so it is
        there to greet whoever uses the token. Under dispatch the token carries the room's
        agent dispatch instead, which LiveKit acts on when the person's arrival creates the
        room (a room that already exists without an agent needs `POST /rooms/{room}/agent`)."""
        name = checked_room_name(room)
        who = checked_identity(identity)
        dispatcher = dispatch()
        if dispatcher is None:
            await running().join(name)
        jwt = participant_token(
            api_key=livekit.api_key,
            api_secret=livekit.api_secret.get_secret_value(),
            room=name,
            identity=who,
            ttl_s=options.token_ttl_s,
            # Under dispatch the person's arrival in a new room brings the agent (an unnamed
            # worker's comes to every new room without asking).
            agent_name=None if dispatcher is None else options.dispatch.agent_name or None,
        )
        return TokenResponse(url=livekit.url, room=name, identity=who, token=jwt)

    def session_store() -> SessionStore:
        return store_for_worker(running(), options.recording.directory)

    app.include_router(sessions_router(sessions or session_store, private))

    @app.websocket("/v1/voice")
    async def voice_socket(ws: WebSocket) -> None:
        """One conversation over a WebSocket (docs/websocket.md); the key is checked on the
        upgrade's headers, as on every other private route."""
        await serve_socket(ws, worker(), guard)

    static = static_dir()
    client_js = options.web_client_js or default_client_js()

    @app.get("/static/vendor/livekit-client.umd.js")
    async def livekit_client() -> FileResponse:
        if not client_js.is_file():
            raise Unsupported(
                f"the LiveKit JavaScript client is not installed at {client_js}; "
                "run `npm ci --prefix services/voice/web`"
            )
        return FileResponse(client_js, media_type="text/javascript")

    @app.get("/")
    async def page() -> FileResponse:
        return FileResponse(static / "index.html")

    @app.get("/sessions")
    async def sessions_page() -> FileResponse:
        """The sessions console (static/sessions.js); its API calls carry the key."""
        return FileResponse(static / "sessions.html")

    app.mount("/static", StaticFiles(directory=static), name="static")
    return app
