"""Airflow deployed as in `helm-values/` (CeleryExecutor variant), on this machine: a private
PostgreSQL and Redis (services.py), each Airflow component as its own process (airflow.py), for
the tests of this folder and for bench/concurrent_runs.py.

Layers: services knows nothing of Airflow; airflow.py takes the services' URLs and the Helm
values; the tests and the bench take a running deployment."""
