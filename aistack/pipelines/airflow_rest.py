"""The few Airflow REST API (v2) calls aistack makes, over httpx, with or without Airflow installed.

Three callers share it: the TaskOrchestration watcher (re-parse the generator file, stop the
runs of a deleted resource, resume a failed run; Airflow 3 tasks may not touch the metadata
database and the execution API can do none of these), `aistack airflow` (unpause the generated
DAGs of a local UI) and `aistack resume`. Endpoints used:

- ``POST /auth/token``: a JWT for a user of the simple or FAB auth manager.
- ``PUT /api/v2/parseDagFile/{file_token}``: queues a priority parse of one file. The token is
  the file's bundle and path signed with ``[api] secret_key``, which every component of one
  deployment shares. Airflow answers 404 while the file defines no DAG yet.
- ``GET /api/v2/dags`` and ``/dags/{dag_id}/details``; ``PATCH /dags/{dag_id}`` (pause/unpause).
- ``GET /api/v2/dags/{dag_id}/dagRuns`` and ``PATCH .../dagRuns/{run_id}`` to stop runs.
- ``GET .../dagRuns/{run_id}`` and ``.../dagRuns/{run_id}/taskInstances``; ``POST
  /api/v2/dags/{dag_id}/clearTaskInstances`` to resume a failed run (aistack.pipelines.resume).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)


class AirflowAPIError(RuntimeError):
    pass


def file_token(bundle_name: str, relative_fileloc: str, secret_key: str) -> str:
    """The ``file_token`` Airflow itself hands out for a DAG file (its DAG details' ``file_token``)."""
    from itsdangerous import URLSafeSerializer

    if not secret_key:
        raise AirflowAPIError("[api] secret_key is not set: cannot sign a parse request")
    return URLSafeSerializer(secret_key).dumps({"bundle_name": bundle_name, "relative_fileloc": relative_fileloc})


def get_token(base_url: str, username: str, password: str, timeout: float = 10.0) -> str:
    """A JWT for the user, from ``/auth/token``."""
    base = base_url.rstrip("/")
    try:
        response = httpx.post(f"{base}/auth/token", json={"username": username, "password": password}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise AirflowAPIError(f"POST {base}/auth/token: {exc}") from exc
    if response.status_code >= 400:
        raise AirflowAPIError(f"{base}/auth/token refused {username!r}: {response.status_code} {response.text[:200]}")
    return response.json()["access_token"]


class AirflowAPI:
    """``secret_key`` ([api] secret_key) is needed only to ask for parses."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0, secret_key: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.secret_key = secret_key
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

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
        token = file_token(bundle_name, relative_fileloc, self.secret_key)
        response = self._call("PUT", f"/parseDagFile/{token}")
        if response.status_code == 404:
            log.warning("Airflow has no DAG from %s:%s yet: waiting for its regular parse", bundle_name, relative_fileloc)
            return False
        return True

    def get_dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG's details (params from its latest serialized version), or None."""
        response = self._call("GET", f"/dags/{quote(dag_id, safe='')}/details")
        return None if response.status_code == 404 else response.json()

    def dags(self, tag: str | None = None) -> list[dict[str, Any]]:
        """Every DAG Airflow knows (optionally only those with `tag`)."""
        return self._pages("/dags", "dags", [("tags", tag)] if tag else [])

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call("PATCH", f"/dags/{quote(dag_id, safe='')}", json={"is_paused": paused})

    def active_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Queued and running runs of a DAG (none when the DAG is unknown)."""
        return self._pages(f"/dags/{quote(dag_id, safe='')}/dagRuns", "dag_runs", [("state", "queued"), ("state", "running")])

    def fail_run(self, dag_id: str, run_id: str, note: str | None = None) -> None:
        """Mark a run failed: its running tasks are stopped, the rest do not start."""
        body: dict[str, Any] = {"state": "failed"}
        if note:
            body["note"] = note
        self._call("PATCH", f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}", json=body)

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        """One run, or None when the DAG or the run is unknown."""
        response = self._call("GET", f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}")
        return None if response.status_code == 404 else response.json()

    def latest_run(self, dag_id: str, state: str) -> dict[str, Any] | None:
        """The run in ``state`` that ended last, or None (also when the DAG is unknown)."""
        params = {"state": state, "order_by": "-end_date", "limit": "1"}
        response = self._call("GET", f"/dags/{quote(dag_id, safe='')}/dagRuns", params=params)
        runs = [] if response.status_code == 404 else response.json().get("dag_runs", [])
        return runs[0] if runs else None

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start a run now (with `conf`, e.g. another input); the new run."""
        response = self._call("POST", f"/dags/{quote(dag_id, safe='')}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        if response.status_code == 404:
            raise AirflowAPIError(f"Airflow at {self.base_url} has no DAG {dag_id}: is the TaskOrchestration among the ones it serves?")
        return dict(response.json())

    def newest_run(self, dag_id: str) -> dict[str, Any] | None:
        """The run created last, in any state, or None (also when the DAG is unknown)."""
        params = {"order_by": "-run_after", "limit": "1"}
        response = self._call("GET", f"/dags/{quote(dag_id, safe='')}/dagRuns", params=params)
        runs = [] if response.status_code == 404 else response.json().get("dag_runs", [])
        return runs[0] if runs else None

    def tasks(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's tasks with their `downstream_task_ids` (none when the DAG is unknown)."""
        response = self._call("GET", f"/dags/{quote(dag_id, safe='')}/tasks")
        return [] if response.status_code == 404 else list(response.json().get("tasks", []))

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """One XCom value, deserialized, or None when there is none."""
        path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/{quote(task_id, safe='')}/xcomEntries/{quote(key, safe='')}"
        response = self._call("GET", path, params={"deserialize": "true", "map_index": str(map_index)})
        return None if response.status_code == 404 else response.json().get("value")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1, token: str | None = None) -> tuple[list[Any], str | None]:
        """A task's log lines (structured entries or text) from `token` on, and the token to read
        on from (None: the log is complete)."""
        path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/{quote(task_id, safe='')}/logs/{try_number}"
        params = {"map_index": str(map_index), **({"token": token} if token else {"full_content": "true"})}
        response = self._call("GET", path, params=params, headers={"Accept": "application/json"})
        if response.status_code == 404:
            return [], None
        body = response.json()
        return list(body.get("content") or []), body.get("continuation_token")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, mapped ones one by one (none when the run is unknown)."""
        return self._pages(f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances", "task_instances", [])

    def clear_task_instances(self, dag_id: str, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Clear task instances as ``body`` (ClearTaskInstancesBody) says; the cleared ones, or None
        when the DAG or the run is unknown."""
        response = self._call("POST", f"/dags/{quote(dag_id, safe='')}/clearTaskInstances", json=body)
        return None if response.status_code == 404 else response.json().get("task_instances", [])

    def _pages(self, path: str, key: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Every item of a paged list (empty when the parent is unknown: 404)."""
        items: list[dict[str, Any]] = []
        while True:
            response = self._call("GET", path, params=[*params, ("limit", "100"), ("offset", str(len(items)))])
            if response.status_code == 404:
                return items
            page = response.json()
            items += page.get(key, [])
            if not page.get(key) or len(items) >= page.get("total_entries", 0):
                return items
