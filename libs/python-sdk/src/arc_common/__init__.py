"""Arc SDK: the contract every Arc service speaks (settings, NATS streaming RPC, envelopes)."""

from arc_common.errors import ArcError, ErrorCode

__all__ = ["ArcError", "ErrorCode"]
