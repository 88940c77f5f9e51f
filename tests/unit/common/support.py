"""What the unit tests of the streaming server and in-process paths share."""

from __future__ import annotations

from typing import Any

from arc_common.streaming import StreamingEndpoint
from arc_common.wire import BrainRequest, Request


def endpoint(
    handler: Any,
    *,
    subject: str = "brain.request",
    request_type: type[Request] = BrainRequest,
) -> StreamingEndpoint[Any]:
    """A brain-like endpoint serving `handler` on `subject`, cancelled on the subject's
    `.cancel` sibling (`arc.brain.request` -> `arc.brain.cancel`)."""
    return StreamingEndpoint(
        name="brain",
        subject=subject,
        queue_group="brain",
        cancel_subject=f"{subject.rpartition('.')[0]}.cancel",
        request_type=request_type,
        handler=handler,
    )
