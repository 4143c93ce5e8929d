"""An Airflow connection type for A2A agents: the agent's base URL and its bearer token."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from aistack.agents.client import SyncAgentClient


class A2AHook(BaseHook):
    """Builds an A2A client from a connection (host: the agent's base URL; password: the token).

    Without a connection, `agent_url` is used; a token of None means the configured agent token:
    `namespace`'s own (its file in AISTACK_AGENT_TOKENS_DIR) when there is one, so the agent knows
    the caller as that namespace, else the shared one (AISTACK_AGENT_TOKEN[_FILE], or the local
    one `aistack agents serve` created).
    """

    conn_name_attr = "a2a_conn_id"
    default_conn_name = "a2a_default"
    conn_type = "a2a"
    hook_name = "A2A agent"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port", "login", "extra"],
            "relabeling": {"host": "Agent base URL", "password": "Bearer token"},
            "placeholders": {"host": "http://summarizer-agent.default.svc.cluster.local/api/v1/agent"},
        }

    def __init__(self, a2a_conn_id: str | None = None, agent_url: str | None = None, namespace: str | None = None) -> None:
        super().__init__()
        self.a2a_conn_id = a2a_conn_id
        self.agent_url = agent_url
        self.namespace = namespace

    def endpoint(self) -> tuple[str, str | None]:
        """(base URL, token) for this hook."""
        if self.a2a_conn_id:
            conn = self.get_connection(self.a2a_conn_id)
            url = conn.host if "://" in (conn.host or "") else f"{conn.schema or 'http'}://{conn.host}:{conn.port or 80}"
            return url.rstrip("/"), conn.password or None
        if not self.agent_url:
            raise ValueError("give a2a_conn_id or agent_url")
        return self.agent_url.rstrip("/"), None

    def get_conn(self) -> SyncAgentClient:
        url, token = self.endpoint()
        return SyncAgentClient(url, token=token, namespace=self.namespace)
