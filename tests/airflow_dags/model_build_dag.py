"""A one-task DAG around OllamaModelBuildOperator for tests/operators (the cluster comes from KUBECONFIG)."""

from datetime import UTC, datetime

from airflow.sdk import DAG

from aistack_airflow.operators.model_build import OllamaModelBuildOperator

with DAG("test_model_build", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC)) as dag:
    OllamaModelBuildOperator(
        task_id="build",
        definition_name="summarizer-model",
        namespace="default",
        kubernetes_conn_id=None,
        in_cluster=False,
        startup_check_interval_seconds=1,
        base_container_status_polling_interval=0.2,
    )
