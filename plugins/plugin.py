"""aistack's AirflowPlugin: the TaskOrchestrations page in the Airflow UI.

Registered through the `airflow.plugins` entry point (pyproject.toml), so every install of
aistack has it without copying files into a plugins folder. It adds:

- a FastAPI app at `/aistack` (plugins/pages.py): the list of TaskOrchestrations, the same rows
  as JSON, and each run's results page;
- a nav entry "TaskOrchestrations" that shows the page inside the UI.

Airflow imports every plugin in every task process too (the task SDK looks for macros and
listeners in them), so this module stays small: the app is imported only when Airflow reads
`fastapi_apps`, which only the api-server does. Importing it eagerly cost each task about 2 s of
CPU (Airflow's API server, FastAPI and the page renderers), the largest part of a task's start.

The operators' extra link (the agent card) comes with the provider entry point
(plugins/provider_info.py), and run status is written by the tasks themselves, so the plugin
registers no listeners.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/aistack"


class _PagesApp:
    """`fastapi_apps`, imported from plugins/pages.py when first read."""

    def __get__(self, instance: Any, owner: type | None = None) -> list[dict[str, Any]]:
        from aistack_airflow.pages import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "aistack TaskOrchestrations"}]


class AistackPlugin(AirflowPlugin):
    name = "aistack"
    fastapi_apps = _PagesApp()
    external_views = [
        {"name": "TaskOrchestrations", "href": "aistack/", "destination": "nav", "url_route": "taskorchestrations", "category": "browse"},
    ]
