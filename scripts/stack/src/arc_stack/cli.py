"""`arc`: the operator's command line behind `make run`, `make stop` and `make status`."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, cast

import typer
from arc_common.nats_connection import connect
from arc_common.settings import NatsSettings
from arc_common.wire import VoiceAdminReply
from pydantic import SecretStr

from arc_stack.audit import AuditError
from arc_stack.audit import audit as audit_lock
from arc_stack.deploy_tools import install_deploy_tools
from arc_stack.go_sdk import install_go_sdk
from arc_stack.nats_auth import local_passwords, write_production_secrets
from arc_stack.parts import build_parts, service_instances
from arc_stack.paths import state_dir
from arc_stack.restarts import RestartRecord, record_path
from arc_stack.secrets import local_api_key
from arc_stack.server import ManagedServer, ServerStartError
from arc_stack.settings import StackSettings
from arc_stack.supervisor import (
    Supervisor,
    run_foreground,
    running_supervisor_pid,
    stop_running,
)
from arc_stack.voices import Action, ask_all, describe

app = typer.Typer(
    help="Arc local mesh: run, stop and check the real servers and services.",
    no_args_is_help=True,
    add_completion=False,
)


def _banner(settings: StackSettings, parts: list[ManagedServer]) -> str:
    names = {p.name for p in parts}
    lines = [
        "",
        "Arc is up. Ctrl-C stops everything.",
        f"  NATS      nats://127.0.0.1:{settings.nats_port}"
        f"  (monitoring http://127.0.0.1:{settings.nats_monitor_port})",
        f"  Postgres  postgresql://postgres@127.0.0.1:{settings.postgres_port}/"
        f"{settings.postgres_db}",
        f"  Pulsar    pulsar://127.0.0.1:{settings.pulsar_port}"
        f"  (admin http://127.0.0.1:{settings.pulsar_admin_port})",
        f"  LiveKit   ws://127.0.0.1:{settings.livekit_port}"
        f"  (API key {settings.livekit_keys(state_dir())[0]}; the secret: `arc client-env`)",
    ]
    if "llm" in names:
        lines.append(
            f"  LLM       http://127.0.0.1:{settings.llm_port}/v1"
            "  (SmolLM2-135M-Instruct, OpenAI Chat Completions; the brain's model)"
        )
    for instance in service_instances(settings):
        if instance.part in names:
            lines.append(f"  {instance.part:<9} http://127.0.0.1:{instance.port}/healthz")
    if "jaeger" in names:
        lines.append(
            f"  Traces    http://127.0.0.1:{settings.jaeger_query_port}"
            "/api/traces?service=arc-voice&operation=voice.turn"
            f"  (Jaeger query API, no UI; OTLP in on {settings.jaeger_otlp_port}; docs/tracing.md)"
        )
    if "prometheus" in names:
        lines.append(
            f"  Metrics   http://127.0.0.1:{settings.prometheus_port}"
            "  (Prometheus: targets, alerts, PromQL; docs/observability.md)"
        )
    lines.append("")
    key_file = state_dir() / "api-key"
    if "voice" in names:
        # The key rides in the link's fragment, which the browser never sends to a server.
        lines += [
            "Talk to the agent: open this link in a browser and allow the microphone:",
            f"  http://127.0.0.1:{settings.voice_http_port}/#key={local_api_key(state_dir())}",
            "  or take one turn from a file: make talk IN=question.wav OUT=reply.wav",
            "Past conversations (transcripts, recordings, timings) in the sessions console:",
            f"  http://127.0.0.1:{settings.voice_http_port}/sessions#key="
            f"{local_api_key(state_dir())}",
        ]
    if "brain" in names:
        lines += [
            "Chat by text: curl -N http://127.0.0.1:"
            f"{settings.brain_http_port}/chat/stream -H 'content-type: application/json' \\",
            f'  -H "authorization: Bearer $(cat {key_file})" \\',
            '  -d \'{"session_id": "s1", "user_id": "me", "text": "My name is Dana and I love '
            "sailing.\"}'",
        ]
    lines += [
        "Check it from another terminal with `make status`; stop it with Ctrl-C or `make stop`.",
        "",
    ]
    return "\n".join(lines)


@app.command()
def run() -> None:
    """Install what is missing, start the whole mesh, and keep it running until Ctrl-C."""
    settings = StackSettings()
    state = state_dir()
    parts = build_parts(settings, state)
    # The supervisor serves its own restart metrics; Prometheus (when it runs) scrapes them.
    from arc_stack.prometheus import scrape_supervisor

    scrape_supervisor(parts, settings.supervisor_metrics_port)
    supervisor = Supervisor(
        parts,
        state,
        restart_policy=settings.restart_policy,
        metrics_port=settings.supervisor_metrics_port,
    )
    raise typer.Exit(asyncio.run(run_foreground(supervisor, lambda: _banner(settings, parts))))


@app.command()
def install() -> None:
    """Install every part (Python wheels are already in place; Pulsar jars, LiveKit, Jaeger
    and llama.cpp builds, Prometheus from Debian), the Go SDK's modules and the deployment
    validators."""
    settings = StackSettings()
    state = state_dir()
    try:
        asyncio.run(Supervisor(build_parts(settings, state), state).install())
        asyncio.run(install_go_sdk(state / "logs"))
        # docker-compose and kustomize for `make compose-config`/`make k8s-validate` and
        # their tests (tests/deployment).
        asyncio.run(install_deploy_tools(state / "logs"))
    except ServerStartError as exc:
        typer.echo(f"✗ {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("api-key")
def api_key() -> None:
    """Print the local services' API key (made on first use under the state directory)."""
    typer.echo(local_api_key(state_dir()))


@app.command("client-env")
def client_env() -> None:
    """Print `export` lines with what a client of the local mesh needs (the API key, LiveKit's
    URL and keys): `eval "$(uv run arc client-env)"`, as `make talk` does."""
    settings = StackSettings()
    state = state_dir()
    key, secret = settings.livekit_keys(state)
    values = {
        "ARC_HTTP__API_KEYS": local_api_key(state),
        "ARC_LIVEKIT__URL": f"ws://127.0.0.1:{settings.livekit_port}",
        "ARC_LIVEKIT__API_KEY": key,
        "ARC_LIVEKIT__API_SECRET": secret,
        "ARC_VOICE__HTTP_PORT": str(settings.voice_http_port),
    }
    for name, value in values.items():
        typer.echo(f"export {name}={shlex.quote(value)}")


@app.command("nats-secrets")
def nats_secrets(
    folder: Annotated[Path, typer.Argument(help="the production SECRETS_DIR")],
) -> None:
    """Write production NATS secrets into FOLDER: a password per service user (kept if one is
    there) and `nats_config`, the server's config with the permission matrix (docs/security.md).
    """
    for path in write_production_secrets(folder):
        typer.echo(f"wrote {path}")
    typer.echo(
        "The services read their password as uid 10001: chown 10001 the nats_password_* "
        "files (docs/deployment.md)."
    )


@app.command()
def audit(
    strict: Annotated[
        bool, typer.Option(help="fail (exit 3) when any locked package could not be checked")
    ] = False,
) -> None:
    """Check every locked package against the known vulnerabilities (pip-audit), less the
    allow-list in security/audit-allowlist.toml. Exit 1: an advisory applies; exit 3: the
    vulnerability service could check nothing (or, with --strict, not everything)."""
    try:
        code, lines = audit_lock(strict=strict)
    except AuditError as exc:
        typer.echo(f"✗ audit: {exc}", err=True)
        raise typer.Exit(2) from exc
    for line in lines:
        typer.echo(line)
    raise typer.Exit(code)


@app.command()
def voices(
    action: Annotated[str, typer.Argument(help="list (default), load or unload")] = "list",
    voice: Annotated[str | None, typer.Argument(help="the voice to load or unload")] = None,
    instance: Annotated[
        list[str] | None,
        typer.Option(help="a TTS worker's id (from `list`); repeat it; default: every worker"),
    ] = None,
) -> None:
    """List the TTS workers' voices, or load or unload one on every worker (or on those
    named): an operator warms a voice before its callers arrive (docs/tts.md)."""
    if action not in ("list", "load", "unload"):
        typer.echo(f"unknown action {action!r}: list, load or unload", err=True)
        raise typer.Exit(2)
    if action != "list" and not voice:
        typer.echo(f"{action} needs a voice: arc voices {action} VOICE", err=True)
        raise typer.Exit(2)
    settings = StackSettings()
    password = local_passwords(state_dir(), ["operator"])["operator"]
    nats = NatsSettings(
        url=f"nats://127.0.0.1:{settings.nats_port}",
        user="operator",
        password=SecretStr(password),
        connect_attempts=1,
        # A one-shot command: nats.py retries a refused first connection forever unless told a
        # positive number of attempts (0, like -1, means no limit there).
        max_reconnect_attempts=1,
    )

    async def run_action() -> list[VoiceAdminReply]:
        try:
            nc = await connect(nats, name="arc-voices")
        except Exception as exc:
            raise typer.Exit(_say_unreachable(nats.url, exc)) from exc
        try:
            return await ask_all(nc, cast(Action, action), voice, instances=instance)
        finally:
            await nc.close()

    replies = asyncio.run(run_action())
    if not replies:
        typer.echo("no TTS worker answered (is `make run` up?)", err=True)
        raise typer.Exit(1)
    for reply in replies:
        typer.echo(describe(reply))
    raise typer.Exit(1 if any(r.error is not None for r in replies) else 0)


def _say_unreachable(url: str, exc: Exception) -> int:
    typer.echo(f"cannot reach NATS at {url} ({exc}); is `make run` up?", err=True)
    return 1


@app.command()
def stop() -> None:
    """Stop a running `make run` (and any part it left behind)."""
    raise typer.Exit(stop_running(state_dir()))


async def status_report(parts: Sequence[ManagedServer], state: Path) -> tuple[list[str], bool]:
    """`make status`: one line per part (does it answer; how often `make run` restarted it,
    from the supervisor's record, and when last), and whether every part answers."""
    results = await asyncio.gather(*(p.healthy() for p in parts))
    record = RestartRecord.read(record_path(state))
    lines = []
    if record is not None:
        running = running_supervisor_pid(state) == record.pid
        lines.append(
            f"Restarts counted since `make run` started at {record.started_at}"
            + ("" if running else " (that run has ended)")
        )
    for part, ok in zip(parts, results, strict=True):
        line = f"{'✓' if ok else '✗'} {part.name:<12} {'healthy' if ok else 'not answering':<13}"
        restarts = record.parts.get(part.name) if record is not None else None
        if restarts is not None:
            line += f"  restarts {restarts.restarts}"
            if restarts.last_restart is not None:
                line += f" (last {restarts.last_restart})"
        lines.append(line.rstrip())
    return lines, all(results)


@app.command()
def status() -> None:
    """Health-check every part and show its restarts; exits 0 only when all of them answer."""
    settings = StackSettings()
    state = state_dir()
    lines, healthy = asyncio.run(status_report(build_parts(settings, state), state))
    for line in lines:
        typer.echo(line)
    raise typer.Exit(0 if healthy else 1)


if __name__ == "__main__":
    app()
