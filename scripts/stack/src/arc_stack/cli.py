"""`arc`: the operator's command line behind `make run`, `make stop` and `make status`."""

from __future__ import annotations

import asyncio

import typer

from arc_stack.parts import build_parts
from arc_stack.paths import state_dir
from arc_stack.server import ServerStartError
from arc_stack.settings import StackSettings
from arc_stack.supervisor import Supervisor, run_foreground, stop_running

app = typer.Typer(
    help="Arc local mesh: run, stop and check the real servers and services.",
    no_args_is_help=True,
    add_completion=False,
)


def _banner(settings: StackSettings) -> str:
    return "\n".join(
        [
            "",
            "Arc is up. Ctrl-C stops everything.",
            f"  NATS      nats://127.0.0.1:{settings.nats_port}"
            f"  (monitoring http://127.0.0.1:{settings.nats_monitor_port})",
            f"  Postgres  postgresql://postgres@127.0.0.1:{settings.postgres_port}/"
            f"{settings.postgres_db}",
            f"  Pulsar    pulsar://127.0.0.1:{settings.pulsar_port}"
            f"  (admin http://127.0.0.1:{settings.pulsar_admin_port})",
            f"  LiveKit   ws://127.0.0.1:{settings.livekit_port}"
            f"  (keys {settings.livekit_api_key} / {settings.livekit_api_secret})",
            "",
            "Check it from another terminal with `make status`;"
            " stop it with Ctrl-C or `make stop`.",
            "",
        ]
    )


@app.command()
def run() -> None:
    """Install what is missing, start the whole mesh, and keep it running until Ctrl-C."""
    settings = StackSettings()
    state = state_dir()
    supervisor = Supervisor(build_parts(settings, state), state)
    raise typer.Exit(asyncio.run(run_foreground(supervisor, lambda: _banner(settings))))


@app.command()
def install() -> None:
    """Install every part (Python wheels are already in place; Pulsar jars, LiveKit build)."""
    settings = StackSettings()
    state = state_dir()
    try:
        asyncio.run(Supervisor(build_parts(settings, state), state).install())
    except ServerStartError as exc:
        typer.echo(f"✗ {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def stop() -> None:
    """Stop a running `make run` (and any part it left behind)."""
    raise typer.Exit(stop_running(state_dir()))


@app.command()
def status() -> None:
    """Health-check every part; exits 0 only when all of them answer."""
    settings = StackSettings()
    parts = build_parts(settings, state_dir())

    async def check() -> list[bool]:
        return list(await asyncio.gather(*(p.healthy() for p in parts)))

    results = asyncio.run(check())
    for part, ok in zip(parts, results, strict=True):
        typer.echo(f"{'✓' if ok else '✗'} {part.name:<10} {'healthy' if ok else 'not answering'}")
    raise typer.Exit(0 if all(results) else 1)


if __name__ == "__main__":
    app()
