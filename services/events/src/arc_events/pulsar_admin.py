"""Topic set-up and subscription statistics through Pulsar's admin REST API."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import httpx
from arc_common.errors import Internal
from arc_common.subjects import PULSAR_NAMESPACES, PULSAR_TENANT, ensure_pulsar_namespaces

log = logging.getLogger(__name__)


def topic_path(topic: str) -> str:
    """`persistent://tenant/ns/name` -> `persistent/tenant/ns/name` (the admin URL form)."""
    scheme, sep, rest = topic.partition("://")
    if not sep or scheme not in ("persistent", "non-persistent") or rest.count("/") != 2:
        raise ValueError(f"not a fully qualified topic name: {topic!r}")
    return f"{scheme}/{rest}"


def namespace_of(topic: str) -> str:
    tenant, namespace, _ = topic_path(topic).split("/", 1)[1].split("/")
    return f"{tenant}/{namespace}"


def _check(response: httpx.Response, what: str, *, conflict_ok: bool = False) -> None:
    if response.is_success or (conflict_ok and response.status_code == 409):
        return
    raise Internal(
        f"pulsar admin: {what} failed with HTTP {response.status_code}: {response.text[:300]}"
    )


class PulsarAdmin:
    def __init__(self, admin_url: str, *, timeout_s: float = 10.0) -> None:
        self._http = httpx.AsyncClient(base_url=admin_url, timeout=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def ensure_topics(self, topics: Iterable[str]) -> None:
        """The contract's tenant and namespaces (`arc_common.subjects.ensure_pulsar_namespaces`,
        the same set-up the local stack runs), then the non-partitioned topics; idempotent,
        so every start runs it. A topic outside those namespaces is a `ValueError`."""
        topics = sorted(set(topics))
        known = {f"{PULSAR_TENANT}/{ns.name}" for ns in PULSAR_NAMESPACES}
        strays = [t for t in topics if namespace_of(t) not in known]
        if strays:
            raise ValueError(f"topics outside the namespaces {sorted(known)}: {strays}")
        await ensure_pulsar_namespaces(self._http)
        for topic in topics:
            r = await self._http.put(f"/admin/v2/{topic_path(topic)}")
            _check(r, f"create {topic}", conflict_ok=True)

    async def backlog(self, topic: str, subscription: str) -> int | None:
        """Messages the subscription has not acknowledged; None when it does not exist yet."""
        r = await self._http.get(f"/admin/v2/{topic_path(topic)}/stats")
        if r.status_code == 404:
            return None
        _check(r, f"stats of {topic}")
        sub = r.json().get("subscriptions", {}).get(subscription)
        return None if sub is None else int(sub.get("msgBacklog", 0))
