"""The Go SDK's golden files (libs/go-sdk/testdata) are what arc_common produces now: a field
renamed, added or re-typed in Python fails here until the files are regenerated, and then
the Go tests fail until the Go structs follow."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

TESTDATA = Path(__file__).resolve().parents[3] / "libs" / "go-sdk" / "testdata"
REGENERATE = "uv run --frozen python libs/go-sdk/testdata/generate.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("go_sdk_golden", TESTDATA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_golden_files_match_arc_common() -> None:
    expected: dict[str, bytes] = _generator().build()
    on_disk = {p.name for p in TESTDATA.iterdir() if p.suffix in (".msgpack", ".json")}
    assert on_disk == set(expected), f"golden files differ in name; run `{REGENERATE}`"
    stale = [name for name, data in expected.items() if (TESTDATA / name).read_bytes() != data]
    assert not stale, f"stale golden files {stale}; run `{REGENERATE}`"


def test_golden_set_covers_every_message_of_the_contract() -> None:
    names = set(_generator().build())
    for kind in ("delta", "audio", "end", "error"):
        assert f"reply_{kind}.msgpack" in names
    for message in ("brain_request", "tts_request", "cancel", "commit", "announcement"):
        assert f"{message}.msgpack" in names
    from arc_common.events import EVENT_TYPES

    for event in EVENT_TYPES:
        assert f"event_{event.TYPE.replace('.', '_')}.json" in names
