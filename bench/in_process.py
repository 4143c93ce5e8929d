"""What the benches that run pipelines with dag.test() in their own process share: a private
Airflow and aistack home, set up once (imported by bench/fan_out.py and bench/observability_cost.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def private_home(prefix: str) -> Path:
    """A fresh folder holding this process's Airflow (database migrated, the repository's dags/
    as its bundle) and aistack home; the pipelines to run go in `<home>/pipelines`."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AISTACK_HOME": str(home / "aistack"),
            "AISTACK_OUTPUT_DIR": str(home / "outputs"),
            "AISTACK_AGENT_TOKEN": "bench-token",
            "AISTACK_ORCHESTRATIONS_PATH": str(home / "pipelines"),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [{"name": "aistack", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {"path": str(REPO / "dags")}}]
            ),
        }
    )
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, capture_output=True)
    return home
