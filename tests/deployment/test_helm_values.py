"""The deployment under test is the one helm-values/ describes: every `config` option of the values
files is an option Airflow knows and is what the components read, the executor and the number of
workers are the values', and what the tests set differently is only the listed timings. These
need no services: they read the environment the components are started with."""

from __future__ import annotations

import subprocess

import pytest

from tests.deployment.airflow import AIRFLOW, TEST_SETTINGS, AirflowDeployment, helm_config, helm_values
from tests.deployment.services import Postgres


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> AirflowDeployment:
    root = tmp_path_factory.mktemp("planned")
    return AirflowDeployment(root / "airflow", root / "dags", Postgres("127.0.0.1", 5432, "postgres", "airflow"), "redis://127.0.0.1:6379/0")


def read_option(deployment: AirflowDeployment, section: str, key: str) -> str:
    done = subprocess.run([AIRFLOW, "config", "get-value", section, key], env=deployment.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_every_option_of_the_helm_values_is_one_airflow_knows():
    from airflow.configuration import conf

    known = conf.configuration_description
    unknown = [f"{s}.{k}" for s, k in helm_config(helm_values()) if k not in known.get(s, {}).get("options", {})]
    assert not unknown, f"helm-values set options Airflow 3.3 (with its providers) does not have: {unknown}"


def test_the_components_read_the_helm_values_options_except_the_listed_test_timings(planned: AirflowDeployment):
    values = helm_values()
    expected = {**helm_config(values), ("core", "executor"): values["executor"], **TEST_SETTINGS}
    read = {option: read_option(planned, *option) for option in expected}
    assert read == expected
    overridden = sorted(f"{s}.{k}" for s, k in set(helm_config(values)) & set(TEST_SETTINGS))
    assert overridden == ["scheduler.task_instance_heartbeat_timeout"], "a Helm option the tests override must be a listed timing"


def test_one_celery_worker_per_replica_and_the_chart_components(planned: AirflowDeployment):
    values = helm_values()
    components = planned.commands()
    assert values["executor"] == "CeleryExecutor" and values["redis"]["enabled"] and values["postgresql"]["enabled"]
    assert [c for c in components if c.startswith("worker-")] == [f"worker-{i}" for i in range(1, values["workers"]["replicas"] + 1)]
    assert values["triggerer"]["enabled"] and values["dagProcessor"]["enabled"]
    assert {"api-server", "scheduler", "dag-processor", "triggerer"} <= set(components)
