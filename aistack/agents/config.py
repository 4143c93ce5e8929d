"""How one agent server is set up, with every default read from the environment in one place.

- AISTACK_AGENT_PUBLIC_URL: the base URL the agent card advertises (in a cluster, the Service
  URL, e.g. http://analyzer-agent.ai.svc.cluster.local:8080); default: the URL it listens on.
- AISTACK_AGENT_MAX_BODY: the largest request body in bytes (default 1 MiB); larger ones get 413.
- AISTACK_WEBHOOK_ALLOW: private webhook targets admitted by the SSRF guard (see webhooks.py).
- AISTACK_AGENT_TOKEN_FILE / AISTACK_AGENT_TOKEN: the shared bearer token (see tokens.py).
- AISTACK_AGENT_TOKENS_DIR: one bearer token file per caller namespace (see tokens.py).
- OLLAMA_HOST: the Ollama server the model calls go to (what the official client reads).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from aistack import settings
from aistack.agents.tokens import AgentTokens, TokenDirectory, TokenSource
from aistack.agents.webhooks import AllowList

PUBLIC_URL_ENV = settings.AGENT_PUBLIC_URL
MAX_BODY_ENV = settings.AGENT_MAX_BODY
DEFAULT_MAX_BODY = 1024 * 1024


class ConfigError(ValueError):
    """A setting that keeps an agent from starting; the message says what to set."""


@dataclass(frozen=True)
class ServerOptions:
    """Everything about serving an agent that is not in its OllamaAgent resource."""

    public_url: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    tokens: TokenSource | None = None
    namespace_tokens: TokenDirectory | None = None
    webhook_allow: AllowList = field(default_factory=AllowList)
    webhook_timeout: float = 10.0
    webhook_base_delay: float = 1.0
    webhook_max_delay: float = 60.0
    ready_cache_seconds: float = 5.0
    json_retries: int = 1
    max_tasks: int = 1000

    def accepted_tokens(self) -> AgentTokens:
        """Every token the agent accepts: the shared one and the namespaces' ones."""
        return AgentTokens(self.tokens, self.namespace_tokens)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> ServerOptions:
        env = os.environ if env is None else env
        raw_limit = env.get(MAX_BODY_ENV, "").strip()
        try:
            limit = int(raw_limit) if raw_limit else DEFAULT_MAX_BODY
        except ValueError:
            raise ConfigError(f"{MAX_BODY_ENV}={raw_limit!r}: write a number of bytes, e.g. 1048576") from None
        try:
            allow = AllowList.from_env(env)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        values: dict[str, object] = {
            "public_url": env.get(PUBLIC_URL_ENV) or None,
            "max_body_bytes": limit,
            "tokens": TokenSource.from_env(env),
            "namespace_tokens": TokenDirectory.from_env(env),
            "webhook_allow": allow,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
