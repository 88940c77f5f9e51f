"""`arc voices` refuses what it cannot do before it connects, and says so when the mesh is
not up (no NATS on the port: a real refused connection, nothing stubbed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from arc_stack.cli import app
from arc_stack.server import free_port
from typer.testing import CliRunner

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["voices", "format"], "unknown action 'format'"),
        (["voices", "load"], "load needs a voice"),
        (["voices", "unload"], "unload needs a voice"),
    ],
)
def test_a_bad_command_line_exits_2_naming_the_problem(args: list[str], says: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_without_a_running_mesh_it_exits_1_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARC_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("ARC_NATS_PORT", str(free_port()))
    result = CliRunner().invoke(app, ["voices"])
    assert result.exit_code == 1, result.output
    assert "cannot reach NATS" in result.output and "make run" in result.output
