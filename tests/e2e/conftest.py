"""The e2e tests run untraced by coverage (docs/testing.md): they time what a person hears
(answers within seconds, barge-in, silence bounds), and coverage's tracer slows the Python in
this process about 2.3 times on Python 3.11, enough to fail them on a loaded box. Neither this
process nor the services they start measure coverage while one runs."""

from __future__ import annotations

import os
from collections.abc import Iterator

import coverage
import pytest

# Set by coverage's subprocess patch: a Python process started with it measures itself.
_SUBPROCESS_CONFIG = "COVERAGE_PROCESS_CONFIG"


@pytest.fixture(autouse=True)
def _untraced() -> Iterator[None]:
    measuring = coverage.Coverage.current()
    if measuring is not None:
        measuring.stop()
    config = os.environ.pop(_SUBPROCESS_CONFIG, None)
    try:
        yield
    finally:
        if config is not None:
            os.environ[_SUBPROCESS_CONFIG] = config
        if measuring is not None:
            measuring.start()
