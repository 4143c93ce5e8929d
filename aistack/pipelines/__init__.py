"""TaskOrchestrations as pipelines: how one maps onto a DAG, where they come from, and what a run
reports and publishes, decided without Airflow (the adapters in aistack_airflow only carry it out).

- `plan`: the mapping of a TaskOrchestration onto a DAG (dag_id, tasks, edges, trigger rules,
  retries, timeouts, what each step receives).
- `source`: the TaskOrchestrations of a folder or of the cluster, good and bad, for the generator.
- `status`: the run's progress written to the resource's status, and its events as webhooks.
- `output`: the results a run publishes, their keys, and the stores they go to.
- `overview`: the rows of the TaskOrchestrations page.
- `airflow_rest`: the calls the submission watcher makes to Airflow's REST API.

Layer: above resources, kube and agents. Imports no Airflow.
"""
