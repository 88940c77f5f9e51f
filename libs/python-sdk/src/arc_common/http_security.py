"""Who may call a service's HTTP routes, how often, and with how much.

Every route that hands out data or power (chat, speech, tokens, room control, transcripts)
asks for one of the service's API keys, as `Authorization: Bearer <key>` or `X-API-Key`;
only health, metrics and the talk page are public. With no key configured those routes are
closed, not open: the secure path is the default one, and `make run` generates a key.

Failures keep to the contract's error codes (`bad_request`, `busy`, `too_large`); the HTTP
status says the finer point (401, 429), so a client that only reads codes still knows
whether a retry can help.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from arc_common.errors import BadRequest, Busy, TooLarge
from arc_common.http_errors import error_response
from arc_common.settings import HttpSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Unauthorized(BadRequest):
    """No key, or not one of ours: asking again the same way cannot help."""

    http_status = 401


class RateLimited(Busy):
    """Too many requests from one client: later can help."""

    http_status = 429


class HttpGuard:
    """The API-key check and the per-client rate limit, as FastAPI dependencies."""

    def __init__(self, settings: HttpSettings) -> None:
        self._max_body_bytes = settings.max_body_bytes
        self._keys = [key.get_secret_value().encode() for key in settings.api_keys]
        self._limit = RateLimitItemPerMinute(settings.rate_limit_per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def install(self, app: FastAPI) -> None:
        """The body limit, for every route of `app` (public ones take no bodies anyway)."""
        app.add_middleware(BodyLimit, max_bytes=self._max_body_bytes)

    def key_matches(self, presented: str) -> bool:
        """Constant time in the key's content, and every key is compared (no early exit
        that tells which one came close)."""
        candidate = presented.encode()
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        return matched

    async def require_key(self, request: Request) -> None:
        self.check_key(request.headers)

    def check_key(self, headers: Mapping[str, str]) -> None:
        """The key check itself, for a request or a WebSocket's upgrade headers."""
        presented = headers.get("x-api-key")
        if presented is None:
            scheme, _, credentials = headers.get("authorization", "").partition(" ")
            presented = credentials.strip() if scheme.lower() == "bearer" else None
        if not self._keys:
            raise Unauthorized("this route needs an API key and the service has none set")
        if not presented:
            raise Unauthorized("this route needs an API key (Authorization: Bearer <key>)")
        if not self.key_matches(presented):
            raise Unauthorized("the API key is not valid")

    async def rate_limit(self, request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        if not self._limiter.hit(self._limit, request.url.path.split("/")[1], client):
            raise RateLimited(
                f"more than {self._limit.amount} requests a minute from {client}; slow down"
            )


class BodyLimit:
    """Refuses a request body past `max_bytes` as it arrives: by its Content-Length when it
    has one, otherwise once the chunks read add up to more."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = TooLarge(f"the request body is over the limit of {self.max_bytes} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await error_response(too_large)(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise too_large
            return message

        await self.app(scope, counted, send)
