"""One Airflow DAG per TaskOrchestration (dag_id `aistack__<namespace>__<name>`), from the cluster or a folder.

AISTACK_ORCHESTRATIONS_PATH names a folder of manifests; otherwise the TaskOrchestrations of
the cluster in the Kubernetes configuration are listed (briefly cached; when the cluster
cannot be reached, the last good listing is used). An invalid resource becomes a DAG of the
same id whose only task fails with the validation errors; every valid one loads regardless.
"""

from aistack import orchestration_source
from aistack_plugin.generator import generate

_snapshot = orchestration_source.load()
globals().update(generate(_snapshot))
