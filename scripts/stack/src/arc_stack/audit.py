"""`arc audit`: every package in the lock against the known vulnerabilities (pip-audit), less
the advisories an allow-list says do not apply to Arc (`security/audit-allowlist.toml`).

pip-audit reports a package it could not look up as skipped and still exits 0: on a machine
that cannot reach its vulnerability service every package is skipped, and a plain
`pip-audit` run passes having checked nothing. So the verdict here counts what was actually
checked, and says so when that is nothing (docs/security.md, "Supply chain").
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from arc_stack.paths import repo_root

ALLOWLIST = Path("security") / "audit-allowlist.toml"

# Exit statuses: clean, an advisory that applies, nothing (or not everything) checked.
CLEAN, VULNERABLE, UNCHECKED = 0, 1, 3


class AuditError(Exception):
    """The audit could not run: a bad allow-list, no lock export, pip-audit failing."""


@dataclass(frozen=True, slots=True)
class Allowed:
    id: str
    package: str
    reason: str


@dataclass(frozen=True, slots=True)
class Finding:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]

    def allowed_by(self, entry: Allowed) -> bool:
        return canonicalize_name(entry.package) == canonicalize_name(self.package) and (
            entry.id == self.id or entry.id in self.aliases
        )


@dataclass(slots=True)
class Report:
    checked: list[str] = field(default_factory=list)
    unchecked: list[tuple[str, str]] = field(default_factory=list)  # (package, why)
    findings: list[Finding] = field(default_factory=list)  # not allowed: these fail it
    allowed: list[tuple[Finding, Allowed]] = field(default_factory=list)
    stale: list[Allowed] = field(default_factory=list)  # allow-list entries that matched nothing

    @property
    def total(self) -> int:
        return len(self.checked) + len(self.unchecked)


def load_allowlist(path: Path) -> list[Allowed]:
    """`[[allow]]` tables of `id`, `package` and `reason`; each must say why."""
    try:
        data = tomllib.loads(path.read_text()) if path.is_file() else {}
    except tomllib.TOMLDecodeError as exc:
        raise AuditError(f"{path}: not valid TOML ({exc})") from exc
    entries = data.get("allow", [])
    if not isinstance(entries, list):
        raise AuditError(f"{path}: `allow` must be a list of [[allow]] tables")
    allowed = []
    for n, entry in enumerate(entries, start=1):
        missing = [
            key
            for key in ("id", "package", "reason")
            if not isinstance(entry.get(key), str) or not entry[key].strip()
        ]
        if missing:
            raise AuditError(f"{path}: allow entry {n} lacks {', '.join(missing)}")
        allowed.append(Allowed(entry["id"].strip(), entry["package"].strip(), entry["reason"]))
    return allowed


def read_report(data: Mapping[str, Any], allowlist: Sequence[Allowed]) -> Report:
    """pip-audit's JSON (`-f json`) sorted into checked, unchecked, allowed and failing."""
    report = Report()
    used: set[Allowed] = set()
    for dep in data.get("dependencies", []):
        name = str(dep["name"])
        if "skip_reason" in dep:
            report.unchecked.append((name, str(dep["skip_reason"])))
            continue
        report.checked.append(name)
        for vuln in dep.get("vulns", []):
            finding = Finding(
                package=name,
                version=str(dep.get("version", "")),
                id=str(vuln["id"]),
                aliases=tuple(vuln.get("aliases", ())),
                fix_versions=tuple(vuln.get("fix_versions", ())),
            )
            entry = next((a for a in allowlist if finding.allowed_by(a)), None)
            if entry is None:
                report.findings.append(finding)
            else:
                report.allowed.append((finding, entry))
                used.add(entry)
    report.stale = [entry for entry in allowlist if entry not in used]
    return report


def verdict(report: Report, *, strict: bool) -> tuple[int, list[str]]:
    """The exit status and the lines to print. Not strict, a run that could check nothing
    (no vulnerability service reachable) says so loudly and does not fail `make lint`;
    strict (`make audit`), any package left unchecked fails."""
    lines = [
        f"{f.package} {f.version}: {f.id}"
        + (f" (fixed in {', '.join(f.fix_versions)})" if f.fix_versions else "")
        for f in report.findings
    ]
    lines += [f"allowed: {f.package} {f.id}: {entry.reason}" for f, entry in report.allowed]
    lines += [
        f"allow-list entry {entry.id} ({entry.package}) matched nothing: remove it"
        for entry in report.stale
    ]
    summary = f"checked {len(report.checked)} of {report.total} locked packages"
    if report.findings:
        return VULNERABLE, [*lines, f"{summary}: {len(report.findings)} advisories apply"]
    if report.unchecked:
        why = report.unchecked[0][1]
        if not report.checked:
            lines.append(
                f"NOT AUDITED: the vulnerability service answered for none of the "
                f"{report.total} locked packages (first: {why})"
            )
        else:
            lines.append(f"{summary}; not checked: {', '.join(n for n, _ in report.unchecked)}")
        return (UNCHECKED if strict else CLEAN), lines
    return CLEAN, [*lines, f"{summary}: no known vulnerability"]


def locked_requirements(root: Path) -> str:
    """Every third-party package the lock pins, for every workspace member."""
    command = ["uv", "export", "--frozen", "--no-hashes", "--all-packages", "--no-emit-workspace"]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AuditError(f"`{' '.join(command)}` failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def pip_audit(requirements: str, *, timeout_s: int = 15) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
        file.write(requirements)
        file.flush()
        command = [
            sys.executable, "-m", "pip_audit", "-r", file.name, "--no-deps", "--disable-pip",
            "--progress-spinner", "off", "--timeout", str(timeout_s), "-f", "json",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    # 0: nothing found, 1: something found; both write the report. Anything else (a service
    # error, a bad requirement) writes none.
    try:
        data: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise AuditError(
            f"pip-audit exited {done.returncode} without a report: {done.stderr.strip()[-800:]}"
        ) from exc
    return data


def audit(*, strict: bool, root: Path | None = None) -> tuple[int, list[str]]:
    root = root or repo_root()
    allowlist = load_allowlist(root / ALLOWLIST)
    return verdict(read_report(pip_audit(locked_requirements(root)), allowlist), strict=strict)
