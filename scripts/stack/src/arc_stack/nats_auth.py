"""Who may say and hear what on NATS: one user per service, with the contract's subjects as
its permissions, and no anonymous clients.

The matrix follows ARCHITECTURE.md: the voice worker asks (`brain.request`, `tts.request`,
their cancels and commits) and tells (lifecycle events), and hears only its own inboxes and
announcements; the brain and TTS hear only their own requests (in their queue groups) and
answer on the requester's reply subject; an announcer may only announce. Nobody but the
operator may subscribe to another service's requests, which carry people's words.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from arc_common import subjects
from nats.micro.service import ServiceVerb, control_subject

# Streamed replies are many messages on one reply subject (a TTS turn is hundreds of audio
# frames); `allow_responses` grants that much on the subject of each request received.
RESPONSES_MAX = 100_000
RESPONSES_EXPIRE = "10m"

# The inboxes a client makes (`nc.new_inbox()`) and the `micro` discovery subjects.
INBOXES = "_INBOX.>"
DISCOVERY = "$SRV.>"
SERVER_PINGS = "$SRV.PING.>"


@dataclass(frozen=True, slots=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # May answer on the reply subject of a request it received (and nothing else there).
    responses: bool = False


def permission_matrix(prefix: str = "") -> dict[str, Permissions]:
    """Each service user's allowed subjects, under a subject prefix (tests use one)."""

    def p(*names: str) -> tuple[str, ...]:
        return tuple(subjects.prefixed(prefix, name) for name in names)

    lifecycle = p(
        subjects.VOICE_TRACK_PUBLISHED,
        subjects.VOICE_TRACK_UNPUBLISHED,
        subjects.SESSION_STARTED,
        subjects.SESSION_ENDED,
    )
    return {
        "voice": Permissions(
            publish=(
                *p(
                    subjects.BRAIN_REQUEST,
                    subjects.BRAIN_CANCEL,
                    subjects.BRAIN_COMMIT,
                    subjects.BRAIN_SESSION_DELETE,
                    subjects.BRAIN_TRUNCATE,
                    subjects.TTS_REQUEST,
                    # One TTS worker's own subject: the one that has the unit's voice loaded.
                    f"{subjects.TTS_REQUEST}.*",
                    subjects.TTS_CANCEL,
                ),
                *lifecycle,
                *p(subjects.VOICE_WORKER_BEAT, f"{subjects.VOICE_WORKER_BEAT}.*"),
                # Pings to the brain or TTS instance serving a silent stream (arc-server).
                SERVER_PINGS,
                # The TTS workers' stats: which voices each has loaded (docs/tts.md).
                control_subject(ServiceVerb.STATS, name=subjects.TTS_SERVICE),
            ),
            # Other voice workers' beats (LiveKit dispatch mode, docs/dispatch.md).
            subscribe=(
                INBOXES,
                # `.<worker id>`: a worker probed when its beat is late (docs/dispatch.md).
                *p(
                    subjects.VOICE_ANNOUNCE,
                    subjects.VOICE_WORKER_BEAT,
                    f"{subjects.VOICE_WORKER_BEAT}.*",
                ),
            ),
            responses=True,  # an announcement's reply
        ),
        "brain": Permissions(
            publish=(),
            subscribe=(
                # Only in its queue group: a second subscriber outside it would see every turn.
                f"{subjects.prefixed(prefix, subjects.BRAIN_REQUEST)} {subjects.BRAIN_QUEUE}",
                # Deleting a session's history (the sessions console): one replica answers.
                f"{subjects.prefixed(prefix, subjects.BRAIN_SESSION_DELETE)} "
                f"{subjects.BRAIN_QUEUE}",
                # Cutting an interrupted answer to what was heard: one replica answers.
                f"{subjects.prefixed(prefix, subjects.BRAIN_TRUNCATE)} {subjects.BRAIN_QUEUE}",
                *p(subjects.BRAIN_CANCEL, subjects.BRAIN_COMMIT),
                DISCOVERY,
            ),
            responses=True,
        ),
        "tts": Permissions(
            publish=(),
            subscribe=(
                f"{subjects.prefixed(prefix, subjects.TTS_REQUEST)} {subjects.TTS_QUEUE}",
                # Its own subject, `tts.request.<its id>`, in the same queue group.
                f"{subjects.prefixed(prefix, subjects.TTS_REQUEST)}.* {subjects.TTS_QUEUE}",
                *p(subjects.TTS_CANCEL),
                # Its own admin subject, `tts.admin.<its id>` (the operator asks there).
                subjects.tts_admin(prefix, "*"),
                DISCOVERY,
            ),
            responses=True,
        ),
        # The events service works from Postgres and Pulsar; it needs nothing on NATS.
        "events": Permissions(publish=(), subscribe=()),
        # Anything that speaks through the agent: a scheduler, the Go SDK's announcer.
        "announcer": Permissions(publish=p(subjects.VOICE_ANNOUNCE), subscribe=(INBOXES,)),
        # A person's tools (`nats` CLI, debugging): everything.
        "operator": Permissions(publish=(">",), subscribe=(">",)),
    }


def local_passwords(state: Path, users: list[str]) -> dict[str, str]:
    """A random password per user, made once under the state directory (0600) and the same
    on every `make run`, so a service restarted alone still connects."""
    path = state / "nats-users.json"
    known: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    missing = [user for user in users if user not in known]
    if missing:
        known |= {user: secrets.token_urlsafe(24) for user in missing}
        _write_private(path, json.dumps(known))
    return {user: known[user] for user in users}


def _write_private(path: Path, text: str) -> None:
    """Written whole (a reader never sees half a file) and readable by this user only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def _rule(items: tuple[str, ...]) -> str:
    # An empty allow list would read as "no restriction"; nothing allowed is "deny all".
    if not items:
        return '{deny: [">"]}'
    return "{allow: [" + ", ".join(json.dumps(item) for item in items) + "]}"


def server_config(passwords: Mapping[str, str], matrix: Mapping[str, Permissions]) -> str:
    """The `authorization` block of a nats-server config: anything not allowed is denied, and
    a client without a user is refused."""
    users = []
    for user, password in passwords.items():
        perms = matrix[user]
        parts = [
            f"publish: {_rule(perms.publish)}",
            f"subscribe: {_rule(perms.subscribe)}",
        ]
        if perms.responses:
            expires = json.dumps(RESPONSES_EXPIRE)
            parts.append(f"allow_responses: {{max: {RESPONSES_MAX}, expires: {expires}}}")
        users.append(
            f"    {{user: {json.dumps(user)}, password: {json.dumps(password)},\n"
            f"     permissions: {{{', '.join(parts)}}}}}"
        )
    return "authorization {\n  users = [\n" + ",\n".join(users) + "\n  ]\n}\n"


# The users a production deployment gets a password for: the four services, an announcer and
# the operator (docs/security.md). The TTS replicas share `tts`, as they share its queue group.
PRODUCTION_USERS = ("voice", "brain", "tts", "events", "announcer", "operator")


def password_file(user: str) -> str:
    """The name of a user's password file among the production secrets."""
    return f"nats_password_{user}"


def write_production_secrets(folder: Path) -> list[Path]:
    """The NATS secrets of a production deployment, in `folder` (compose's SECRETS_DIR): one
    random password per user (`nats_password_<user>`, kept when it already exists, so that
    running this again after adding a user leaves the running services' passwords alone) and
    the server's `authorization` config with the permission matrix (`nats_config`). Every
    file 0600. Returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    passwords: dict[str, str] = {}
    for user in PRODUCTION_USERS:
        path = folder / password_file(user)
        kept = path.read_text().strip() if path.is_file() else ""
        if kept:
            passwords[user] = kept
            continue
        passwords[user] = secrets.token_urlsafe(24)
        _write_private(path, passwords[user] + "\n")
        written.append(path)
    # The `authorization` block alone: compose's nats runs it with its store and ports given
    # as flags (a store_dir in both is refused), and the nats Helm chart can `$include` it.
    config = folder / "nats_config"
    _write_private(config, server_config(passwords, permission_matrix()))
    written.append(config)
    return written
