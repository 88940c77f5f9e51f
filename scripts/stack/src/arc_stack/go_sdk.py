"""The Go SDK's modules and build, fetched and compiled by `arc install` so that its tests
(run from pytest) work offline afterwards.

Modules land in Go's default module cache (GOMODCACHE), the compiled packages in its build
cache (GOCACHE), both shared with the LiveKit build. A stamp under the arc cache, named after
go.sum and the Go version, makes a repeated install a no-op.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from arc_stack.install_lock import exclusive
from arc_stack.livekit import go_binary
from arc_stack.paths import cache_dir, repo_root
from arc_stack.server import run_step

# Cold on 2 cores: the module download and compiling LiveKit's and Pulsar's client libraries
# (docs/go-sdk.md has the measured time).
INSTALL_TIMEOUT_S = 1800.0
STATICCHECK_VERSION = "v0.8.2"
STATICCHECK_PACKAGE = "honnef.co/go/tools/cmd/staticcheck"


def go_sdk_dir() -> Path:
    return repo_root() / "libs" / "go-sdk"


def staticcheck_binary() -> Path:
    return cache_dir() / "go-sdk" / f"staticcheck-{STATICCHECK_VERSION}" / "staticcheck"


def go_environment(*, offline: bool = False) -> dict[str, str]:
    """The environment every Go command of the SDK runs in. CGO stays off: the code is pure
    Go, and with cgo Pulsar's client would compile a C zstd. `offline` refuses any download,
    which is how the tests prove the install step did its work."""
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        # A caller's -mod=vendor or -mod=mod would either break the build or let it rewrite
        # go.mod; the checked-in go.sum is the truth.
        "GOFLAGS": "-mod=readonly -buildvcs=false",
        "GOTOOLCHAIN": "local",
    }
    if offline:
        env["GOPROXY"] = "off"
    return env


def go_version(go: str) -> str:
    """What `go env GOVERSION` says ("go1.24.1"); "" when it says nothing."""
    return subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=False
    ).stdout.strip()


def _stamp(module_dir: Path, go: str) -> Path:
    digest = hashlib.sha256((module_dir / "go.sum").read_bytes() + go_version(go).encode())
    return cache_dir() / "go-sdk" / f"{digest.hexdigest()[:16]}.done"


async def install_go_sdk(log_dir: Path, say: Callable[[str], None] = print) -> None:
    """Download the SDK's modules, compile it with its tests' imports (`go vet` type-checks
    the test files, which compiles everything they import) and install staticcheck."""
    module_dir = go_sdk_dir()
    if not (module_dir / "go.mod").is_file():
        return
    go = go_binary()
    stamp = _stamp(module_dir, go)
    if stamp.is_file():
        return
    began = time.monotonic()
    async with exclusive(stamp.parent / ".lock"):
        if stamp.is_file():  # another process installed it while we waited
            return
        env = go_environment()
        log_path = log_dir / "go-sdk-install.log"
        for argv in ([go, "mod", "download"], [go, "vet", "./..."]):
            await _step(argv, log_path, env, module_dir)
        checker = staticcheck_binary()
        if not checker.is_file():
            checker.parent.mkdir(parents=True, exist_ok=True)
            # `go install pkg@version` ignores any go.mod; -mod flags would only upset it.
            tool_env = {**env, "GOBIN": str(checker.parent), "GOFLAGS": "-buildvcs=false"}
            install = [go, "install", f"{STATICCHECK_PACKAGE}@{STATICCHECK_VERSION}"]
            await _step(install, log_path, tool_env, checker.parent)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    say(f"✓ go-sdk modules installed ({time.monotonic() - began:.1f}s)")


async def _step(argv: list[str], log_path: Path, env: Mapping[str, str], cwd: Path) -> None:
    await run_go_step(argv, log_path, env, cwd, what="go-sdk install", timeout_s=INSTALL_TIMEOUT_S)


async def run_go_step(
    argv: list[str],
    log_path: Path,
    env: Mapping[str, str],
    cwd: Path,
    *,
    what: str,
    timeout_s: float,
    label_words: int | None = None,
    nice: bool = False,
) -> None:
    """One `go` command of an install (`argv[0]` is the go binary), logged to `log_path`;
    `ServerStartError`, led by `what` and ending with the log's tail, when it cannot start
    or fails. Progress lines name the step by its first `label_words` arguments (all by
    default), so that a long build command does not bury them."""
    label = "go " + " ".join(argv[1:] if label_words is None else argv[1 : 1 + label_words])
    await run_step(
        argv,
        log_path,
        what=what,
        label=label,
        command=f"go {' '.join(argv[1:])}",
        timeout_s=timeout_s,
        env=env,
        cwd=cwd,
        nice=nice,
    )
