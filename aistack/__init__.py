"""aistack: multi-agent LLM workflows declared as Kubernetes custom resources, run by Airflow.

The core package stays free of Airflow so the CLI, the agents and the tests start fast
and run anywhere; the Airflow adapters in dags/, plugins/, operators/ and sensors/ import it.
"""

__version__ = "0.1.0"
