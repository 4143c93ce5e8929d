"""Where an agent named by `agentRef` answers: the local registry of `aistack agents serve`,
else the URL the cluster wrote on the OllamaAgent's status."""

from __future__ import annotations

from aistack.agents.registry import lookup


class AgentNotFound(LookupError):
    pass


def resolve_agent_url(name: str, namespace: str = "default") -> str:
    entry = lookup(name, namespace)
    if entry is not None:
        return entry.url
    try:
        from aistack.kube.client import ResourceClient, api_client
        from aistack.resources import OllamaAgent

        agent = ResourceClient(api_client()).get(OllamaAgent, name, namespace)
    except Exception as exc:  # no cluster configured, unreachable, or no such agent
        raise AgentNotFound(
            f'agent "{namespace}/{name}" is not running locally (start it with `aistack agents serve`) and could not be read from the cluster: {exc}'
        ) from None
    if not agent.status or not agent.status.url or not agent.status.ready:
        raise AgentNotFound(f'agent "{namespace}/{name}" is not ready in the cluster (see `kubectl get oagent {name}`)')
    return agent.status.url
