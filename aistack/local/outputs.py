"""Where a local run writes its results, decided before it starts and said on the console.

- `--output-dir DIR`: results go to DIR, whatever storage the orchestration declares.
- Declared `s3` with an AWS connection configured: results go to S3, as declared.
- Declared `s3` without one: results go to the local output directory instead (AISTACK_OUTPUT_DIR,
  default `$AISTACK_HOME/outputs`); a clone without AWS credentials can run the seed's pipeline.
- Declared `local` (or nothing): the local output directory (and the declared path under it).

"Configured" means what the Amazon provider would use without asking anything: the Airflow
connection `aws_default` given as AIRFLOW_CONN_AWS_DEFAULT, AWS credential or profile variables,
or a shared credentials/config file. (No network probe: the instance metadata service would cost
seconds on a laptop.) Local runs read only the environment, not the run's private Airflow
database, for connections.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aistack import settings
from aistack.pipelines.plan import PipelinePlan
from aistack.resources.orchestration import StorageType

AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


@dataclass(frozen=True)
class OutputTarget:
    declared: str  # "s3://bucket/prefix" or "local"
    local: bool  # results are written to `directory`
    replaces_s3: bool  # the run writes locally although the orchestration declares S3
    directory: Path | None  # the local root (results land in <directory>/<ns>/<name>/<run>/)
    reason: str
    forced: bool = False  # the worker points the publish task at `directory` (else the DAG's own storage)

    def describe(self) -> str:
        if not self.local:
            return f"{self.declared} ({self.reason})"
        where = f"{self.directory}/<namespace>/<name>/<run>/"
        if self.replaces_s3:
            return f"{where} instead of the declared {self.declared} ({self.reason})"
        return f"{where} ({self.reason})"


def aws_configuration(env: Mapping[str, str] | None = None, home: Path | None = None) -> str | None:
    """What configures AWS access here, or None."""
    env = os.environ if env is None else env
    if env.get("AIRFLOW_CONN_AWS_DEFAULT"):
        return "AIRFLOW_CONN_AWS_DEFAULT"
    for name in AWS_VARIABLES:
        if env.get(name):
            return name
    home = home or Path.home()
    for variable, default in (("AWS_SHARED_CREDENTIALS_FILE", home / ".aws" / "credentials"), ("AWS_CONFIG_FILE", home / ".aws" / "config")):
        path = Path(env[variable]) if env.get(variable) else default
        if path.is_file():
            return str(path)
    return None


def decide(plan: PipelinePlan, output_dir: Path | None, env: Mapping[str, str] | None = None, home: Path | None = None) -> OutputTarget:
    env = os.environ if env is None else env
    s3 = plan.storage is StorageType.S3
    declared = f"s3://{plan.bucket}/{plan.prefix}" if s3 else "local"
    if output_dir is not None:
        return OutputTarget(declared, True, s3, output_dir.resolve(), "--output-dir", forced=True)
    default = Path(env[settings.OUTPUT_DIR]) if env.get(settings.OUTPUT_DIR) else settings.data_dir() / "outputs"
    if s3:
        configured = aws_configuration(env, home)
        if configured:
            return OutputTarget(declared, False, False, None, f"AWS access configured by {configured}")
        return OutputTarget(
            declared,
            True,
            True,
            default.resolve(),
            "local override: no AWS connection is configured; set AIRFLOW_CONN_AWS_DEFAULT or AWS credentials to write to S3",
            forced=True,
        )
    root = default.joinpath(plan.local_path) if plan.local_path else default
    return OutputTarget(declared, True, False, root.resolve(), "the local output directory")
