"""`arc audit`'s reading of pip-audit's JSON report and of the allow-list: what fails the audit,
what an allow-list entry excuses, and a run that could check nothing is never called clean.

The reports are written out here in pip-audit's `-f json` shape (pip_audit/_format/json.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from arc_stack.audit import (
    CLEAN,
    UNCHECKED,
    VULNERABLE,
    Allowed,
    AuditError,
    load_allowlist,
    read_report,
    verdict,
)

pytestmark = pytest.mark.unit

SKIPPED = "Dependency not found on PyPI and could not be audited: aiofiles (25.1.0)"


def _report(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(deps), "fixes": []}


def _vuln(id: str, *aliases: str, fix: str = "2.0") -> dict[str, Any]:
    return {"id": id, "fix_versions": [fix], "aliases": list(aliases), "description": "x"}


CLEAN_DEP = {"name": "httpx", "version": "0.28.1", "vulns": []}
VULNERABLE_DEP = {
    "name": "Jinja2",
    "version": "3.1.0",
    "vulns": [_vuln("GHSA-h5c8-rqwp-cp95", "CVE-2024-22195", fix="3.1.3")],
}


def test_a_clean_report_passes_and_counts_what_it_checked() -> None:
    code, lines = verdict(read_report(_report(CLEAN_DEP), []), strict=True)
    assert code == CLEAN
    assert lines == ["checked 1 of 1 locked packages: no known vulnerability"]


def test_an_advisory_fails_with_the_package_the_id_and_the_fix() -> None:
    code, lines = verdict(read_report(_report(CLEAN_DEP, VULNERABLE_DEP), []), strict=False)
    assert code == VULNERABLE
    assert "Jinja2 3.1.0: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)" in lines
    assert lines[-1] == "checked 2 of 2 locked packages: 1 advisories apply"


def test_an_allow_list_entry_excuses_its_advisory_by_id_or_alias_and_says_why() -> None:
    by_alias = Allowed("CVE-2024-22195", "jinja2", "no template comes from a user")
    code, lines = verdict(read_report(_report(VULNERABLE_DEP), [by_alias]), strict=True)
    assert code == CLEAN
    assert "allowed: Jinja2 GHSA-h5c8-rqwp-cp95: no template comes from a user" in lines
    # The same id on another package excuses nothing.
    elsewhere = Allowed("CVE-2024-22195", "markupsafe", "not this one")
    code, lines = verdict(read_report(_report(VULNERABLE_DEP), [elsewhere]), strict=True)
    assert code == VULNERABLE
    assert "allow-list entry CVE-2024-22195 (markupsafe) matched nothing: remove it" in lines


def test_an_allow_list_entry_names_its_package_as_pep_503_does() -> None:
    # pip-audit reports the name as the lock spells it; an entry may spell it another way.
    spelled = {"name": "zope.interface", "version": "5.0", "vulns": [_vuln("PYSEC-1")]}
    entry = Allowed("PYSEC-1", "Zope_Interface", "not reachable here")
    code, lines = verdict(read_report(_report(spelled), [entry]), strict=True)
    assert code == CLEAN
    assert "allowed: zope.interface PYSEC-1: not reachable here" in lines


def test_a_run_that_checked_nothing_is_never_called_clean() -> None:
    unchecked = _report({"name": "aiofiles", "skip_reason": SKIPPED})
    code, lines = verdict(read_report(unchecked, []), strict=False)
    # `make lint` goes on (no vulnerability service here), saying so loudly.
    assert code == CLEAN
    assert lines[-1].startswith("NOT AUDITED: the vulnerability service answered for none of")
    assert not any("no known vulnerability" in line for line in lines)
    code, _ = verdict(read_report(unchecked, []), strict=True)
    assert code == UNCHECKED


def test_strict_fails_when_any_package_was_left_unchecked() -> None:
    partly = _report(CLEAN_DEP, {"name": "aiofiles", "skip_reason": SKIPPED})
    assert verdict(read_report(partly, []), strict=True)[0] == UNCHECKED
    code, lines = verdict(read_report(partly, []), strict=False)
    assert code == CLEAN and lines == ["checked 1 of 2 locked packages; not checked: aiofiles"]


def test_the_allow_list_file(tmp_path: Path) -> None:
    path = tmp_path / "allow.toml"
    assert load_allowlist(path) == []  # no file: nothing allowed
    path.write_text('[[allow]]\nid = "PYSEC-1"\npackage = "a"\nreason = "unused code path"\n')
    assert load_allowlist(path) == [Allowed("PYSEC-1", "a", "unused code path")]
    path.write_text('[[allow]]\nid = "PYSEC-1"\npackage = "a"\nreason = " "\n')
    with pytest.raises(AuditError, match="allow entry 1 lacks reason"):
        load_allowlist(path)
    path.write_text("[[allow]\n")
    with pytest.raises(AuditError, match="not valid TOML"):
        load_allowlist(path)


def test_the_shipped_allow_list_loads() -> None:
    from arc_stack.audit import ALLOWLIST
    from arc_stack.paths import repo_root

    for entry in load_allowlist(repo_root() / ALLOWLIST):
        assert entry.reason.strip()
