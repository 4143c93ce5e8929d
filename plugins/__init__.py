"""aistack_airflow: the Airflow provider package of aistack, the adapters between Airflow and the core.

Installed from the repository's Airflow folders (pyproject.toml's package-dir):

- `aistack_airflow` (plugins/): the provider metadata (`provider_info`), the AirflowPlugin with the
  TaskOrchestrations page (`plugin`), and the generator that makes one DAG per TaskOrchestration.
- `aistack_airflow.hooks` (hooks/): connections (the `a2a` agent connection, Airflow's REST API).
- `aistack_airflow.operators` (operators/): tasks (agent calls, pipeline steps and outputs, model
  builds, agent deployments).
- `aistack_airflow.triggers` (triggers/): deferrable waits in the triggerer (A2A tasks, resource changes).
- `aistack_airflow.sensors` (sensors/): the TaskOrchestration submission watcher.
- `aistack_airflow.dags` (dags/): the DAG files a deployment parses.

Each class turns Airflow's context into calls of the core (`aistack`) and back; the core never
imports this package (import-linter checks it), except `aistack.local`, which drives Airflow
for `aistack run` and `aistack airflow`.
"""
