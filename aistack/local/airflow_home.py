"""The private Airflow installation of local runs: `$AISTACK_HOME/airflow`.

    airflow/airflow.cfg        written by Airflow on first use
    airflow/airflow.db         the SQLite metadata database (`airflow db migrate` on first use only)
    airflow/dags/              the DAG bundle `aistack-run`: a copy of the shipped
                               dags/task_orchestrations.py, refreshed when the original changes
    airflow/logs/              Airflow's task logs
    logs/run-<time>-<name>.log the log of each run (Airflow's output, the agents' and the runtime's)

The bundle holds only the generator's DAG file, copied from the aistack_airflow.dags package it
ships in: the other files of dags/ (model builds, agent deployments, the cluster watcher) need a
cluster, and parsing them would only slow every run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from aistack import settings
from aistack.pipelines.submissions import GENERATOR_FILE

BUNDLE_NAME = "aistack-run"
DAG_FILE = GENERATOR_FILE


def shipped_dag_file() -> Path:
    """dags/task_orchestrations.py as installed with aistack_airflow (in a checkout, the file itself)."""
    from importlib.resources import files

    return Path(str(files("aistack_airflow.dags").joinpath(DAG_FILE)))


class AirflowHome:
    """``name``: the folder under the data directory; `aistack airflow` keeps its own ("airflow-ui")
    so that a run's SQLite database is never shared with a running scheduler."""

    def __init__(self, data_dir: Path | None = None, name: str = "airflow") -> None:
        self.data_dir = (data_dir or settings.data_dir()).resolve()
        self.root = self.data_dir / name

    @property
    def database(self) -> Path:
        return self.root / "airflow.db"

    @property
    def bundle(self) -> Path:
        return self.root / "dags"

    @property
    def migrated_marker(self) -> Path:
        return self.root / ".aistack-migrated"

    def new_log(self, name: str) -> Path:
        folder = self.data_dir / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{name}.log"

    def install_bundle(self) -> Path:
        """Write the bundle's DAG file (only when it changed, so Airflow sees no new version)."""
        self.bundle.mkdir(parents=True, exist_ok=True)
        text = shipped_dag_file().read_text()
        target = self.bundle / DAG_FILE
        if not target.is_file() or target.read_text() != text:
            temporary = target.with_name(f".{DAG_FILE}.{os.getpid()}.tmp")
            temporary.write_text(text)
            temporary.replace(target)
        return target

    def environment(self, base: Mapping[str, str], orchestrations_path: Path, dags_folder: Path | None = None) -> dict[str, str]:
        """Airflow's environment: this Airflow home and nothing of another one. The DAG bundle is
        the installed generator file, or `dags_folder` (the repository's dags/, for the UI)."""
        dags = dags_folder or self.bundle
        env = {k: v for k, v in base.items() if not (k.startswith("AIRFLOW__") and k != "AIRFLOW__LOGGING__LOGGING_LEVEL")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.root),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.database}",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                    [
                        {
                            "name": BUNDLE_NAME,
                            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                            "kwargs": {"path": str(dags)},
                        }
                    ]
                ),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.root / "logs"),
                # Task logs hold prompts and answers: Airflow's own defaults (0o775, 0o664) would ignore the umask.
                "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS": oct(0o777 & ~settings.umask()),
                "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS": oct(0o666 & ~settings.umask()),
                settings.HOME: str(self.data_dir),
                settings.ORCHESTRATIONS_PATH: str(orchestrations_path),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env
