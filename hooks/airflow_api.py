"""The Airflow REST API as the TaskOrchestration watcher reaches it from inside a task.

Where to reach it: the connection ``aistack_airflow_api`` (``http://user:password@host:port``;
the user and password get a token from ``/auth/token``, as with the simple and FAB auth
managers; or ``extra: {"token": "..."}``); without one, ``[api] base_url`` and no credentials
(`airflow standalone` with ``simple_auth_manager_all_admins``). Parse requests are signed with
this deployment's ``[api] secret_key``. The calls themselves are aistack.pipelines.airflow_rest's.
"""

from __future__ import annotations

import logging
from typing import Any

from aistack.pipelines.airflow_rest import AirflowAPI, get_token

log = logging.getLogger(__name__)

CONNECTION_ID = "aistack_airflow_api"
DEFAULT_BASE_URL = "http://localhost:8080"


def conf_get(section: str, key: str, fallback: str = "") -> str:
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - older task SDKs
        from airflow.configuration import conf
    return conf.get(section, key, fallback=fallback) or fallback


def api_from_connection(conn_id: str = CONNECTION_ID) -> AirflowAPI:
    """The REST API of this deployment, as the connection (or, without one, [api] base_url) says."""
    secret_key = conf_get("api", "secret_key")
    conn = _connection(conn_id)
    if conn is None:
        return AirflowAPI(conf_get("api", "base_url", DEFAULT_BASE_URL), secret_key=secret_key)
    scheme = conn.conn_type if conn.conn_type in ("http", "https") else "http"
    base = f"{scheme}://{conn.host}{f':{conn.port}' if conn.port else ''}"
    if conn.schema:
        base += "/" + conn.schema.strip("/")
    token = (conn.extra_dejson or {}).get("token")
    if not token and conn.login:
        token = get_token(base, conn.login, conn.password or "")
    return AirflowAPI(base, token, secret_key=secret_key)


def _connection(conn_id: str) -> Any:
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or no connection backend at all
        log.debug("no connection %s (%s): using [api] base_url", conn_id, exc)
        return None
