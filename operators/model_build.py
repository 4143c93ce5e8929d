"""Build OllamaModelDefinitions: in a GPU pod on the cluster, or through the ollama client locally.

Both operators share aistack.models.builds: the same skip rule for unchanged definitions and
the same status written back to the resource (phase, times, digests, the Built condition).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import BaseOperator
from kubernetes.client import models as k8s

from aistack.kube.client import ResourceClient, api_client
from aistack.models import build_pod
from aistack.models.builds import build_with_client, building_status, complete_status, failed_status, is_up_to_date
from aistack.models.modelfile import BuildRequest, build_request
from aistack.resources import OllamaModelDefinition, parse_resource


class OllamaModelBuildOperator(KubernetesPodOperator):
    """Run `ollama create` for one OllamaModelDefinition in a pod on a GPU node.

    The definition is read from the cluster when the task runs (not when the DAG is parsed),
    so a build always uses the latest generation and its status; an unchanged definition
    (same request digest as the last Complete build) is skipped.

    :param definition_name: the OllamaModelDefinition (templated).
    :param definition_namespace: its namespace (templated); default ``default``.
    :param settings: the build pod's image, registry, GPU scheduling (aistack.models.build_pod).
    :param base_models: substitutions of base models, e.g. ``{"llama2": "smollm2:135m"}``.

    Every other argument is KubernetesPodOperator's (``namespace``, ``kubernetes_conn_id``, ...).
    """

    template_fields = (*KubernetesPodOperator.template_fields, "definition_name", "definition_namespace")

    def __init__(
        self,
        *,
        definition_name: str,
        definition_namespace: str = "default",
        settings: build_pod.BuildPodSettings | None = None,
        base_models: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", f"build-{definition_name}")
        kwargs.setdefault("image", (settings or build_pod.BuildPodSettings()).image)
        kwargs.setdefault("on_finish_action", "delete_pod")
        kwargs.setdefault("get_logs", True)
        super().__init__(**kwargs)
        self.definition_name = definition_name
        self.definition_namespace = definition_namespace
        self.settings = settings or build_pod.BuildPodSettings()
        self.base_models = dict(base_models or {})
        self._build_log = ""

    @cached_property
    def definitions(self) -> ResourceClient:
        return ResourceClient(self.hook.api_client)

    def execute(self, context: Any) -> dict[str, Any]:
        definition = self.definitions.get(OllamaModelDefinition, self.definition_name, self.definition_namespace)
        request = build_request(definition, self.base_models)
        if is_up_to_date(definition, request):
            self.log.info("%s is up to date (build digest %s): skipping the build", request.model, request.digest)
            return _outcome(request, definition.status.model_hash, skipped=True)
        self._write_status(building_status(definition, request))
        self._configure_pod(definition, request)
        try:
            super().execute(context)
            result = build_pod.parse_result(self._build_log)
            if result is None:
                raise RuntimeError("the build pod finished without printing its result line")
        except BaseException as exc:
            step = build_pod.failed_step(self._build_log)
            tail = "\n".join(self._build_log.splitlines()[-20:])
            # The pod operator's exception embeds the whole pod object: the log tail says more.
            detail = tail or str(exc).splitlines()[0][:500]
            self._write_status(failed_status(definition, request, step, detail))
            raise
        self._write_status(complete_status(definition, request, result["modelHash"]))
        return _outcome(request, result["modelHash"], skipped=False)

    def _configure_pod(self, definition: OllamaModelDefinition, request: BuildRequest) -> None:
        """Turn buildResources and the settings into the pod's spec before KubernetesPodOperator builds it."""
        resources = definition.spec.build.build_resources
        requirements = build_pod.resource_requirements(resources)
        self.cmds = ["/bin/sh", "-c"]
        self.arguments = [build_pod.BUILD_SCRIPT]
        self.env_vars = [k8s.V1EnvVar(name=k, value=v) for k, v in build_pod.environment(request, self.settings).items()]
        self.container_resources = k8s.V1ResourceRequirements(**requirements)
        self.active_deadline_seconds = self.settings.deadline_seconds
        self.labels = {**(self.labels or {}), "app.kubernetes.io/part-of": "aistack", "ai.stack/model": definition.name}
        if build_pod.wants_gpu(resources):
            self.runtime_class_name = self.runtime_class_name or self.settings.gpu_runtime_class
            self.node_selector = {**self.settings.gpu_node_selector, **(self.node_selector or {})}
            self.tolerations = [*(self.tolerations or []), *(k8s.V1Toleration(**t) for t in self.settings.gpu_tolerations)]
        if self.settings.storage == "volume":
            claim = k8s.V1PersistentVolumeClaimVolumeSource(claim_name=self.settings.models_claim)
            self.volumes = [*(self.volumes or []), k8s.V1Volume(name="models", persistent_volume_claim=claim)]
            mount = k8s.V1VolumeMount(name="models", mount_path=build_pod.MODELS_PATH)
            self.volume_mounts = [*(self.volume_mounts or []), mount]

    def cleanup(self, pod: Any, remote_pod: Any, xcom_result: Any = None, context: Any = None) -> None:
        """Keep the build log before the pod is deleted: it holds the result line or the failing step."""
        if remote_pod is not None:
            try:
                response = self.client.read_namespaced_pod_log(
                    remote_pod.metadata.name,
                    remote_pod.metadata.namespace,
                    container=self.base_container_name,
                    _preload_content=False,
                )
                self._build_log = response.data.decode("utf-8", errors="replace")
            except Exception as exc:  # a pod that never started has no log; the status says so
                self.log.warning("could not read the build log: %s", exc)
        super().cleanup(pod=pod, remote_pod=remote_pod, xcom_result=xcom_result, context=context)

    def _write_status(self, status: dict[str, Any]) -> None:
        self.definitions.patch_status(OllamaModelDefinition, self.definition_name, self.definition_namespace, status)


class OllamaModelLocalBuildOperator(BaseOperator):
    """Build a definition through the official ollama client (a real Ollama or the embedded runtime).

    For machines without a cluster; when `kubeconfig` is given, the status is written back to
    the resource in that cluster as the pod operator does.

    :param manifest: the OllamaModelDefinition, as a mapping.
    :param ollama_host: the Ollama to build with (templated); default ``OLLAMA_HOST``, else the embedded runtime.
    :param base_models: substitutions of base models, as for OllamaModelBuildOperator.
    :param kubeconfig: write the build's status to the resource in this cluster.
    """

    template_fields = ("ollama_host",)  # not the manifest: its TEMPLATE is Go template text, not Jinja

    def __init__(
        self,
        *,
        manifest: Mapping[str, Any],
        ollama_host: str | None = None,
        base_models: Mapping[str, str] | None = None,
        kubeconfig: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.manifest = dict(manifest)
        self.ollama_host = ollama_host
        self.base_models = base_models
        self.kubeconfig = kubeconfig

    def execute(self, context: Any) -> dict[str, Any]:
        import ollama

        definition = parse_resource(self.manifest)
        assert isinstance(definition, OllamaModelDefinition), "manifest must be an OllamaModelDefinition"
        resources = ResourceClient(api_client(self.kubeconfig)) if self.kubeconfig else None
        if resources is not None:
            definition = resources.get(OllamaModelDefinition, definition.name, definition.namespace)
        # No client-side substitution by default: the embedded runtime maps cluster base models
        # itself (visibly, in `show`), and a real Ollama pulls the base model named.
        request = build_request(definition, self.base_models or {})
        if is_up_to_date(definition, request):
            self.log.info("%s is up to date (build digest %s): skipping the build", request.model, request.digest)
            return _outcome(request, definition.status.model_hash, skipped=True)

        def write(status: dict[str, Any]) -> None:
            if resources is not None:
                resources.patch_status(OllamaModelDefinition, definition.name, definition.namespace, status)

        write(building_status(definition, request))
        try:
            model_hash, base_model = build_with_client(ollama.Client(host=self.ollama_host), request, self.log.info)
        except Exception as exc:
            write(failed_status(definition, request, "create", str(exc)))
            raise
        write(complete_status(definition, request, model_hash, base_model=base_model))
        return _outcome(request, model_hash, skipped=False) | {"baseModel": base_model}


def _outcome(request: BuildRequest, model_hash: str | None, skipped: bool) -> dict[str, Any]:
    return {
        "model": request.model,
        "buildDigest": request.digest,
        "modelHash": model_hash,
        "baseModel": request.from_,
        "skipped": skipped,
    }
