"""The chaos suite runs with `make chaos` (`pytest -m chaos`): it starts a whole mesh of its
own and stops parts of it for minutes, so `make test` skips it (docs/testing.md)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "chaos" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="the chaos suite runs with `make chaos` (docs/testing.md)")
    for item in items:
        if "chaos" in item.keywords:
            item.add_marker(skip)
