"""Streaming request/reply over NATS: one request, an ordered stream of chunks, one terminal."""

from arc_common.streaming.client import ReplyStream, StreamingClient
from arc_common.streaming.server import Chunk, StreamingEndpoint, StreamingService, TurnContext

__all__ = [
    "Chunk",
    "ReplyStream",
    "StreamingClient",
    "StreamingEndpoint",
    "StreamingService",
    "TurnContext",
]
