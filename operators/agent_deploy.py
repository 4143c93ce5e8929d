"""Deploy one OllamaAgent to the cluster and write its status (the ollama_agents DAG maps this)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException
from kubernetes.client.exceptions import ApiException

from aistack.agents.deploy import agent_status, deploy
from aistack.kube.client import ResourceClient
from aistack.resources import OllamaAgent, OllamaModelDefinition
from aistack.resources.agent import AgentPhase
from aistack_airflow.hooks.kubernetes import DEFAULT_CONN_ID, cluster_api_client


class OllamaAgentDeployOperator(BaseOperator):
    """Server-side apply the agent's ConfigMap, Deployment, Service (and PDB), wait until ready.

    The resource is read when the task runs, so the latest generation is deployed. A rollout
    that is not ready within `ready_timeout` seconds fails the task (retries re-check it) and
    leaves the agent in phase Deploying with the reason.

    :param agent_name: the OllamaAgent (templated).
    :param agent_namespace: its namespace (templated); default ``default``.
    :param kubernetes_conn_id: the cluster (hooks.kubernetes); default ``kubernetes_default``.
    :param ready_timeout: seconds the rollout may take to become ready.
    """

    template_fields = ("agent_name", "agent_namespace")

    def __init__(
        self,
        *,
        agent_name: str,
        agent_namespace: str = "default",
        kubernetes_conn_id: str = DEFAULT_CONN_ID,
        ready_timeout: float = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.agent_name = agent_name
        self.agent_namespace = agent_namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.ready_timeout = ready_timeout

    @cached_property
    def api(self) -> Any:
        return cluster_api_client(self.kubernetes_conn_id)

    def execute(self, context: Any) -> dict[str, Any]:
        resources = ResourceClient(self.api)
        agent = resources.get(OllamaAgent, self.agent_name, self.agent_namespace)
        ref = agent.spec.model_definition
        try:
            definition = resources.get(OllamaModelDefinition, ref.name, agent.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            message = f'OllamaModelDefinition "{ref.name}" does not exist in namespace "{agent.namespace}": apply it first'
            resources.patch_status(OllamaAgent, agent.name, agent.namespace, agent_status(agent, None, AgentPhase.FAILED, message))
            raise AirflowException(message) from None
        if definition.version != ref.version:
            message = f'"{ref.name}" is version "{definition.version}", the agent pins "{ref.version}"'
            resources.patch_status(OllamaAgent, agent.name, agent.namespace, agent_status(agent, definition, AgentPhase.FAILED, message))
            raise AirflowException(message)
        status = deploy(self.api, agent, definition, self.ready_timeout)
        resources.patch_status(OllamaAgent, agent.name, agent.namespace, status)
        if not status["ready"]:
            raise AirflowException(f"{agent.namespace}/{agent.name} is not ready: {status['message']}")
        self.log.info("%s/%s is ready at %s", agent.namespace, agent.name, status["url"])
        return {"url": status["url"], "model": status["model"], "ready": True}
