"""The few Airflow REST API (v2) calls the TaskOrchestration watcher needs that the Task SDK lacks.

Airflow 3 tasks may not touch the metadata database, and the execution API a task talks to
can trigger runs and read DAGs but cannot ask for a DAG file to be re-parsed or mark a run
failed. The public REST API can, in `airflow standalone` and in a cluster alike:

- ``PUT /api/v2/parseDagFile/{file_token}``: queues a priority parse of one file (the
  DAG processor picks it up within a loop). The token is the file's bundle and path signed
  with ``[api] secret_key``, which every component of one deployment shares. Airflow answers
  404 while the file defines no DAG yet.
- ``GET /api/v2/dags/{dag_id}/details`` (exists? paused? ``last_parsed_time``, params).
- ``GET /api/v2/dags/{dag_id}/dagRuns`` and ``PATCH .../dagRuns/{run_id}`` to stop runs.

Where to reach it: the connection ``aistack_airflow_api`` (``http://user:password@host:port``;
the user and password get a token from ``/auth/token``, as with the simple and FAB auth
managers; or ``extra: {"token": "..."}``); without one, ``[api] base_url`` and no credentials
(`airflow standalone` with ``simple_auth_manager_all_admins``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

CONNECTION_ID = "aistack_airflow_api"
DEFAULT_BASE_URL = "http://localhost:8080"


class AirflowAPIError(RuntimeError):
    pass


def _conf_get(section: str, key: str, fallback: str = "") -> str:
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - older task SDKs
        from airflow.configuration import conf
    return conf.get(section, key, fallback=fallback) or fallback


def file_token(bundle_name: str, relative_fileloc: str, secret_key: str | None = None) -> str:
    """The ``file_token`` Airflow itself hands out for a DAG file (its DAG details' ``file_token``)."""
    from itsdangerous import URLSafeSerializer

    key = secret_key or _conf_get("api", "secret_key")
    if not key:
        raise AirflowAPIError("[api] secret_key is not set: cannot sign a parse request")
    return URLSafeSerializer(key).dumps({"bundle_name": bundle_name, "relative_fileloc": relative_fileloc})


class AirflowAPI:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    @classmethod
    def from_connection(cls, conn_id: str = CONNECTION_ID) -> AirflowAPI:
        conn = _connection(conn_id)
        if conn is None:
            return cls(_conf_get("api", "base_url", DEFAULT_BASE_URL))
        scheme = conn.conn_type if conn.conn_type in ("http", "https") else "http"
        base = f"{scheme}://{conn.host}{f':{conn.port}' if conn.port else ''}"
        if conn.schema:
            base += "/" + conn.schema.strip("/")
        extra = conn.extra_dejson or {}
        token = extra.get("token")
        if not token and conn.login:
            response = httpx.post(
                f"{base}/auth/token", json={"username": conn.login, "password": conn.password or ""}, timeout=10
            )
            if response.status_code >= 400:
                raise AirflowAPIError(f"{base}/auth/token refused {conn.login!r}: {response.status_code} {response.text[:200]}")
            token = response.json()["access_token"]
        return cls(base, token)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> AirflowAPI:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, f"/api/v2{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise AirflowAPIError(f"{method} {self.base_url}/api/v2{path}: {exc}") from exc
        if response.status_code >= 400 and response.status_code != 404:
            raise AirflowAPIError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response

    def request_parse(self, bundle_name: str, relative_fileloc: str) -> bool:
        """Ask for a priority parse of one DAG file; False when Airflow knows no DAG in it yet."""
        response = self._call("PUT", f"/parseDagFile/{file_token(bundle_name, relative_fileloc)}")
        if response.status_code == 404:
            log.warning("Airflow has no DAG from %s:%s yet: waiting for its regular parse", bundle_name, relative_fileloc)
            return False
        return True

    def get_dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG's details (params from its latest serialized version), or None."""
        response = self._call("GET", f"/dags/{quote(dag_id, safe='')}/details")
        return None if response.status_code == 404 else response.json()

    def active_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Queued and running runs of a DAG (none when the DAG is unknown)."""
        runs: list[dict[str, Any]] = []
        offset = 0
        while True:
            params = [("state", "queued"), ("state", "running"), ("limit", "100"), ("offset", str(offset))]
            response = self._call("GET", f"/dags/{quote(dag_id, safe='')}/dagRuns", params=params)
            if response.status_code == 404:
                return runs
            page = response.json()
            runs += page.get("dag_runs", [])
            offset += 100
            if offset >= page.get("total_entries", 0):
                return runs

    def fail_run(self, dag_id: str, run_id: str, note: str | None = None) -> None:
        """Mark a run failed: its running tasks are stopped, the rest do not start."""
        body: dict[str, Any] = {"state": "failed"}
        if note:
            body["note"] = note
        self._call("PATCH", f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}", json=body)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _connection(conn_id: str) -> Any:
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or no connection backend at all
        log.debug("no connection %s (%s): using [api] base_url", conn_id, exc)
        return None
