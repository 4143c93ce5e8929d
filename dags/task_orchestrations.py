"""One Airflow DAG per TaskOrchestration (dag_id `aistack__<namespace>__<name>`), from the cluster or a folder.

AISTACK_ORCHESTRATIONS_PATH names a folder of manifests; otherwise the TaskOrchestrations of
the cluster in the Kubernetes configuration are listed (briefly cached; when the cluster
cannot be reached, the last good listing is used). An invalid resource becomes a DAG of the
same id whose only task fails with the validation errors; every valid one loads regardless.
When Airflow parses the file to run a task, only that task's pipeline is read and built.
"""

from airflow.sdk import get_parsing_context

from aistack_airflow.generator import parse

# A worker running one task of one pipeline builds only that pipeline's DAG.
globals().update(parse(only=get_parsing_context().dag_id))
