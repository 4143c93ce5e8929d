"""ollama_model_builds: build every OllamaModelDefinition, one mapped task each, skipping unchanged ones.

Definitions come from the cluster (built in GPU pods) or, when AISTACK_MODELS_PATH names a
folder, from its manifests (built through the ollama client: a real Ollama at OLLAMA_HOST or
the embedded runtime). Runs manually, on AISTACK_MODEL_BUILDS_SCHEDULE, and whenever the
`aistack://ollamamodeldefinitions` asset is updated: its watcher (triggers/resource_changes.py)
reports each new or changed definition in the cluster.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from aistack import settings
from aistack.models.builds import is_up_to_date
from aistack.models.modelfile import build_request
from aistack_airflow.operators.model_build import OllamaModelBuildOperator, OllamaModelLocalBuildOperator
from aistack_airflow.triggers.resource_changes import ResourceChangeTrigger

log = logging.getLogger(__name__)

DEFINITIONS_ASSET = Asset(
    "aistack://ollamamodeldefinitions",
    # With AISTACK_MODELS_PATH the definitions are files: there is no cluster to watch.
    watchers=[]
    if settings.models_path() is not None
    else [
        AssetWatcher(name="ollamamodeldefinitions_changes", trigger=ResourceChangeTrigger(plural="ollamamodeldefinitions")),
    ],
)

with DAG(
    "ollama_model_builds",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(settings.model_builds_schedule(), timezone="UTC"), assets=[DEFINITIONS_ASSET]),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["aistack", "models"],
    doc_md=__doc__,
) as dag:
    folder = settings.models_path()

    if folder is None:

        @task
        def definitions_to_build() -> list[dict[str, str]]:
            """The cluster's definitions whose last Complete build is not of their current spec."""
            from aistack.kube.client import ResourceClient
            from aistack.resources import OllamaModelDefinition
            from aistack_airflow.hooks.kubernetes import cluster_api_client

            resources = ResourceClient(cluster_api_client())
            valid, invalid, _ = resources.list(OllamaModelDefinition)
            for bad in invalid:
                log.warning("skipping invalid %s/%s: %s", bad.namespace, bad.name, "; ".join(map(str, bad.errors)))
            pending = []
            for definition in valid:
                if is_up_to_date(definition, build_request(definition)):
                    log.info("%s/%s is up to date", definition.namespace, definition.name)
                else:
                    pending.append({"definition_name": definition.name, "definition_namespace": definition.namespace})
            return pending

        OllamaModelBuildOperator.partial(task_id="build", namespace=settings.build_namespace()).expand_kwargs(definitions_to_build())
    else:

        @task
        def definitions_to_build() -> list[dict[str, Any]]:
            """Every valid definition in the folder; the runtime's create is a no-op for unchanged ones."""
            from aistack.resources import OllamaModelDefinition
            from aistack.resources.validation import validate_paths

            result = validate_paths([folder], check_references=False)
            for problem in result.problems:
                log.warning("\n".join(problem.lines()))
            return [document.data for document, resource in result.resources if isinstance(resource, OllamaModelDefinition)]

        OllamaModelLocalBuildOperator.partial(task_id="build").expand(manifest=definitions_to_build())
