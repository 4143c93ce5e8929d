"""Webhook delivery: the SSRF guard and the retrying POST, shared by A2A push notifications and
pipeline events.

They live together because neither is safe alone. A webhook URL comes from a caller (a push
notification config, a TaskOrchestration's `communication.pushNotifications.endpoint`), and the
agent or orchestrator POSTs to it from inside the cluster: without a guard, anyone who can send
a message could make the agent call `http://169.254.169.254/` (cloud metadata) or an internal
service. And without retries a webhook that blips loses an event for good.

`WebhookGuard` resolves the URL's host and refuses loopback, link-local, private, shared
(100.64/10), multicast, reserved and unspecified addresses, unless `AISTACK_WEBHOOK_ALLOW`
admits them: a comma-separated list of host names (`localhost`, `*.svc.cluster.local`),
addresses (`127.0.0.1`) and networks (`10.0.0.0/8`). Tests and local runs set it. The
address that was checked is the one connected to (the request is pinned to it, with the
original Host header and TLS server name), so a DNS answer that changes between the check and
the connection (DNS rebinding) cannot redirect the POST.

`deliver()` POSTs one payload at least once: a bounded timeout per attempt, retries on
connection errors, timeouts, 408, 429 and 5xx, with delays from a `RetrySchedule`
(the OllamaAgent's `webhookConfig`: exponential, linear, fixed or none, `maxRetries`) plus
jitter so that many agents retrying against one receiver do not synchronise. Every attempt of
one delivery carries the same `X-Aistack-Delivery-Id`, so a receiver can drop duplicates.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

log = logging.getLogger("aistack.agents.webhooks")

ALLOW_ENV = "AISTACK_WEBHOOK_ALLOW"
DELIVERY_ID_HEADER = "X-Aistack-Delivery-Id"
RETRYABLE_STATUS = frozenset({408, 425, 429})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeWebhookURL(ValueError):
    """A webhook URL the guard refuses; the message says why and how to admit it."""


@dataclass(frozen=True)
class AllowList:
    """Targets admitted although they are not public: exact hosts, `*.suffix` hosts, networks."""

    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        hosts, suffixes, networks = set(), [], []
        for item in filter(None, (part.strip().lower() for part in text.split(","))):
            if item.startswith("*."):
                suffixes.append(item[1:])
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                if "/" in item or not item.replace("-", "").replace(".", "").isalnum():
                    raise ValueError(
                        f"{ALLOW_ENV}: invalid entry {item!r}: write host names, addresses or networks, e.g. 127.0.0.1,localhost,10.0.0.0/8,*.svc.cluster.local"
                    ) from None
                hosts.add(item)
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AllowList:
        return cls.parse((os.environ if env is None else env).get(ALLOW_ENV, ""))

    def admits_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(suffix) for suffix in self.suffixes)

    def admits_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def blocked_reason(address: IPAddress) -> str | None:
    """Why an address is not a public unicast destination, or None when it is one."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    for attribute, what in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address (cloud metadata lives there)"),
        ("is_unspecified", "the unspecified address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(address, attribute):
            return what
    if not address.is_global:
        return "not a public address"
    return None


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A checked webhook: the URL as given and the address it was checked against."""

    url: str
    host: str
    port: int
    scheme: str
    address: str

    def pinned_url(self) -> str:
        """The URL with the host replaced by the checked address (what is connected to)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))

    def host_header(self) -> str:
        parts = urlsplit(self.url)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{parts.port}" if parts.port else host


class WebhookGuard:
    """Decides whether a webhook URL may be called (see the module docstring)."""

    def __init__(self, allow: AllowList | None = None, resolver: Resolver | None = None):
        self.allow = AllowList.from_env() if allow is None else allow
        self._resolve = resolver or _resolve

    async def check(self, url: str) -> Target:
        """The target to connect to; raises UnsafeWebhookURL with the reason when refused."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UnsafeWebhookURL(f"webhook URL {url!r} cannot be parsed") from None
        if parts.scheme not in ("http", "https"):
            raise UnsafeWebhookURL(f"webhook URL {url!r} must use http or https")
        host = parts.hostname
        if not host:
            raise UnsafeWebhookURL(f"webhook URL {url!r} has no host")
        if parts.username or parts.password:
            raise UnsafeWebhookURL(f"webhook URL {url!r} must not carry credentials; use the authentication field")
        port = port or (443 if parts.scheme == "https" else 80)
        admitted_by_name = self.allow.admits_host(host)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await self._resolve(host, port)]
            except OSError as exc:
                raise UnsafeWebhookURL(f"webhook host {host!r} cannot be resolved ({exc})") from None
        if not addresses:
            raise UnsafeWebhookURL(f"webhook host {host!r} has no addresses")
        for address in addresses:
            reason = blocked_reason(address)
            if reason and not admitted_by_name and not self.allow.admits_address(address):
                resolved = "is" if str(address) == host else f"resolves to {address},"
                raise UnsafeWebhookURL(
                    f"webhook URL {url} {resolved} {reason}; agents only call public addresses unless {ALLOW_ENV} admits the target (e.g. {ALLOW_ENV}={host})"
                )
        return Target(url=url, host=host, port=port, scheme=parts.scheme, address=str(addresses[0]))

    async def accepts(self, url: str) -> bool:
        try:
            await self.check(url)
        except UnsafeWebhookURL:
            return False
        return True


@dataclass(frozen=True)
class RetrySchedule:
    """Delays between delivery attempts: `policy` shapes them, `max_retries` counts them.

    exponential: base, 2*base, 4*base...; linear: base, 2*base, 3*base...; fixed: base each
    time; none: no retries. Each delay is capped at `max_delay`, then jittered to between
    (1 - jitter) and 100 % of itself.
    """

    policy: str = "exponential"
    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.policy not in ("exponential", "linear", "fixed", "none"):
            raise ValueError(f"unknown retry policy {self.policy!r}: use exponential, linear, fixed or none")

    @classmethod
    def from_webhook_config(cls, config: Any, base_delay: float = 1.0, max_delay: float = 60.0) -> RetrySchedule:
        """From an OllamaAgent's `spec.server.webhookConfig` (None: the CRD defaults)."""
        if config is None:
            return cls(base_delay=base_delay, max_delay=max_delay)
        policy = getattr(config.retry_policy, "value", config.retry_policy)
        return cls(policy=policy, max_retries=config.max_retries, base_delay=base_delay, max_delay=max_delay)

    @property
    def retries(self) -> int:
        return 0 if self.policy == "none" else self.max_retries

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """The wait before retry number `retry` (1-based)."""
        factor = {"exponential": 2 ** (retry - 1), "linear": retry, "fixed": 1}.get(self.policy, 0)
        delay = min(self.base_delay * factor, self.max_delay)
        return delay * (1 - self.jitter * (rng or random).random())


@dataclass
class Delivery:
    """The outcome of one delivery (all of its attempts)."""

    url: str
    delivery_id: str
    delivered: bool = False
    attempts: int = 0
    status: int | None = None
    error: str | None = None
    refused: bool = False
    statuses: list[int | None] = field(default_factory=list)


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    payload: bytes | str | Mapping[str, Any] | list[Any],
    *,
    schedule: RetrySchedule | None = None,
    guard: WebhookGuard | None = None,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
    timeout: float = 10.0,
    delivery_id: str | None = None,
    on_attempt: Callable[[Delivery], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Delivery:
    """POST `payload` to `url`, retrying per `schedule`; never raises for delivery failures.

    A refused URL (see WebhookGuard) is not attempted. The result says whether it arrived,
    after how many attempts, and the last status or error.
    """
    schedule = schedule or RetrySchedule()
    guard = guard or WebhookGuard()
    result = Delivery(url=url, delivery_id=delivery_id or uuid.uuid4().hex)
    body = payload if isinstance(payload, bytes) else (payload.encode() if isinstance(payload, str) else json.dumps(payload, separators=(",", ":")).encode())
    for attempt in range(schedule.retries + 1):
        if attempt:
            await sleep(schedule.delay(attempt))
        try:
            target = await guard.check(url)
        except UnsafeWebhookURL as exc:
            result.refused, result.error = True, str(exc)
            log.warning("webhook refused: %s", exc)
            return result
        request_headers = {
            **(headers or {}),
            "Content-Type": content_type,
            "Host": target.host_header(),
            DELIVERY_ID_HEADER: result.delivery_id,
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else None
        result.attempts = attempt + 1
        retry = False
        try:
            response = await client.post(target.pinned_url(), content=body, headers=request_headers, timeout=timeout, extensions=extensions)
            result.status, result.error = response.status_code, None
            if response.is_success:
                result.delivered = True
            else:
                result.error = f"HTTP {response.status_code}"
                retry = response.status_code >= 500 or response.status_code in RETRYABLE_STATUS
        except httpx.TransportError as exc:
            result.status, result.error = None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            retry = True
        result.statuses.append(result.status)
        if on_attempt is not None:
            on_attempt(result)
        if result.delivered or not retry:
            break
        log.info("webhook %s attempt %d failed (%s)", url, attempt + 1, result.error)
    if not result.delivered:
        log.warning("webhook %s not delivered after %d attempts: %s", url, result.attempts, result.error)
    return result
