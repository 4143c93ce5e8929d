"""ollama_agents: deploy every OllamaAgent in the cluster, one mapped task each, and report readiness.

Deploying is idempotent (server-side apply), so the periodic run also repairs drift; an
update of the `aistack://ollamaagents` asset deploys changes at once: its watcher
(triggers/resource_changes.py) reports each new or changed OllamaAgent in the cluster. A local
setup (AISTACK_MODELS_PATH set: resources are files, `aistack airflow`) watches nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from airflow.sdk import DAG, Asset, AssetWatcher, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from aistack import settings
from aistack_airflow.operators.agent_deploy import OllamaAgentDeployOperator
from aistack_airflow.triggers.resource_changes import ResourceChangeTrigger

log = logging.getLogger(__name__)

AGENTS_ASSET = Asset(
    "aistack://ollamaagents",
    watchers=[]
    if settings.models_path() is not None
    else [
        AssetWatcher(name="ollamaagents_changes", trigger=ResourceChangeTrigger(plural="ollamaagents")),
    ],
)

with DAG(
    "ollama_agents",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/30 * * * *", timezone="UTC"), assets=[AGENTS_ASSET]),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["aistack", "agents"],
    doc_md=__doc__,
) as dag:

    @task
    def agents() -> list[dict[str, str]]:
        from aistack.kube.client import ResourceClient
        from aistack.resources import OllamaAgent
        from aistack_airflow.hooks.kubernetes import cluster_api_client

        valid, invalid, _ = ResourceClient(cluster_api_client()).list(OllamaAgent)
        for bad in invalid:
            log.warning("skipping invalid agent %s/%s: %s", bad.namespace, bad.name, "; ".join(map(str, bad.errors)))
        return [{"agent_name": a.name, "agent_namespace": a.namespace} for a in valid]

    OllamaAgentDeployOperator.partial(task_id="deploy").expand_kwargs(agents())
