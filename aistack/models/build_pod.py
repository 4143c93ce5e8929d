"""The pod that builds a model with `ollama create`: its script, environment and scheduling.

Kept apart from the Airflow operator so the pod spec can be read, tested and reused without
Airflow. Every value reaches the shell through environment variables; the script itself is
constant, so nothing from a resource is ever spliced into a command line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from aistack.models.modelfile import BuildRequest
from aistack.resources.model_definition import ComputeResources

DEFAULT_OLLAMA_IMAGE = "ollama/ollama:0.24.0"
RESULT_MARKER = "AISTACK_RESULT "
STEP_MARKER = "[aistack] step="
MODELS_PATH = "/root/.ollama/models"
GPU_RESOURCE = "nvidia.com/gpu"

BUILD_SCRIPT = r"""set -eu
step() { echo "[aistack] step=$1"; }
step serve
ollama serve >/tmp/ollama.log 2>&1 &
tries=0
until ollama list >/dev/null 2>&1; do
  tries=$((tries + 1)); [ "$tries" -le 120 ] || { cat /tmp/ollama.log; exit 1; }; sleep 1
done
case "$AISTACK_BASE_MODEL" in
  /*|./*) step "use-local-base $AISTACK_BASE_MODEL" ;;
  *) step pull; ollama pull "$AISTACK_BASE_MODEL" ;;
esac
step create
printf '%s' "$AISTACK_MODELFILE" > /tmp/Modelfile
ollama create "$AISTACK_MODEL" -f /tmp/Modelfile
step digest
name="${AISTACK_MODEL%%:*}"; tag="${AISTACK_MODEL#*:}"
digest="sha256:$(sha256sum "$OLLAMA_MODELS/manifests/registry.ollama.ai/library/$name/$tag" | cut -d' ' -f1)"
if [ -n "${AISTACK_REGISTRY:-}" ]; then
  step push
  ollama cp "$AISTACK_MODEL" "$AISTACK_REGISTRY/$AISTACK_MODEL"
  ollama push "$AISTACK_REGISTRY/$AISTACK_MODEL"
fi
echo "AISTACK_RESULT {\"modelHash\": \"$digest\", \"model\": \"$AISTACK_MODEL\"}"
"""


@dataclass
class BuildPodSettings:
    """Cluster-specific choices, with defaults for a cluster running the NVIDIA GPU Operator.

    storage "volume": the built model lands on a PersistentVolumeClaim that the Ollama servers
    mount too. storage "registry": it is pushed to `registry` (an OCI registry Ollama can pull from).
    """

    image: str = DEFAULT_OLLAMA_IMAGE
    storage: Literal["volume", "registry"] = "volume"
    models_claim: str = "ollama-models"
    registry: str | None = None
    gpu_runtime_class: str = "nvidia"
    gpu_node_selector: dict[str, str] = field(default_factory=lambda: {"nvidia.com/gpu.present": "true"})
    gpu_tolerations: list[dict[str, str]] = field(default_factory=lambda: [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}])
    deadline_seconds: int = 3600

    def __post_init__(self) -> None:
        if self.storage == "registry" and not self.registry:
            raise ValueError("storage 'registry' needs registry, e.g. registry.example.com/aistack")


def environment(request: BuildRequest, settings: BuildPodSettings) -> dict[str, str]:
    env = {
        "AISTACK_MODEL": request.model,
        "AISTACK_BASE_MODEL": request.from_,
        "AISTACK_MODELFILE": request.modelfile(),
        "OLLAMA_MODELS": MODELS_PATH,
    }
    if settings.storage == "registry":
        env["AISTACK_REGISTRY"] = settings.registry or ""
    return env


def resource_requirements(resources: ComputeResources | None) -> dict[str, dict[str, str]]:
    """requests/limits for the build container; GPUs are requested and limited alike, as Kubernetes requires."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if resources is not None:
        if resources.cpu is not None:
            requests["cpu"] = resources.cpu.text
        if resources.memory is not None:
            requests["memory"] = limits["memory"] = resources.memory.text
        if resources.gpu:
            requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(resources.gpu)
    return {"requests": requests, "limits": limits}


def wants_gpu(resources: ComputeResources | None) -> bool:
    return bool(resources and resources.gpu)


def parse_result(log: str) -> dict[str, Any] | None:
    """The result line the script prints last, or None when the build did not get there."""
    for line in reversed(log.splitlines()):
        _, marker, payload = line.partition(RESULT_MARKER)
        if marker:
            return json.loads(payload)
    return None


def failed_step(log: str) -> str:
    """The last step the script announced: where a failed build stopped."""
    for line in reversed(log.splitlines()):
        _, marker, step = line.partition(STEP_MARKER)
        if marker:
            return step.split()[0] if step else "unknown"
    return "start"
