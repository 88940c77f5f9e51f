"""`arc audit` over the real lock with the real pip-audit: every package the lock pins for this
machine is accounted for, checked or reported unchecked (this machine reaches no vulnerability
service, so here it is the latter, and the run says it audited nothing)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from arc_stack.paths import repo_root
from packaging.requirements import Requirement

pytestmark = [pytest.mark.integration]


def _locked_for_this_machine() -> int:
    export = subprocess.run(
        ["uv", "export", "--frozen", "--no-hashes", "--all-packages", "--no-emit-workspace"],
        cwd=repo_root(), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    pins = [
        Requirement(line.strip())
        for line in export.splitlines()
        if line.strip() and not line.startswith((" ", "#"))
    ]
    return sum(1 for pin in pins if pin.marker is None or pin.marker.evaluate())


def test_arc_audit_accounts_for_every_locked_package() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "arc_stack.cli", "audit"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    total = _locked_for_this_machine()
    assert total > 100, total
    last = done.stdout.strip().splitlines()[-1]
    if last.startswith("NOT AUDITED"):
        assert done.returncode == 0, out
        assert f"answered for none of the {total} locked packages" in last, out
    else:
        assert f" of {total} locked packages" in last, out
        assert done.returncode in (0, 1), out
