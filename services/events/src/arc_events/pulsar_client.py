"""The Pulsar client the relay and the consumers open."""

from __future__ import annotations

import pulsar


def new_client(service_url: str, *, operation_timeout_s: int) -> pulsar.Client:
    return pulsar.Client(
        service_url,
        operation_timeout_seconds=operation_timeout_s,
        connection_timeout_ms=min(operation_timeout_s * 1000, 10_000),
        # The C++ client's own logger (to stdout, warnings and errors), not a Python one: the
        # client's threads call a Python logger, and one that logs while the interpreter exits
        # aborts the process ("terminate called without an active exception", exit 134;
        # apache/pulsar-client-python#256). A publish-and-exit probe here aborted 3 runs of 8
        # with `logging.getLogger("pulsar")`, 0 of 8 with this.
        logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn),
    )
