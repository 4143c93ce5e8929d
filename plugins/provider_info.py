"""Airflow provider metadata: makes the `a2a` connection type and the agent-card link known to
every Airflow component (UI, API server, workers) through the apache_airflow_provider entry point."""

from __future__ import annotations

from typing import Any

from aistack import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "aistack",
        "name": "aistack",
        "description": "Multi-agent LLM workflows on Kubernetes: A2A agents, Ollama model builds, TaskOrchestrations.",
        "versions": [__version__],
        "connection-types": [{"hook-class-name": "aistack_airflow.hooks.a2a.A2AHook", "connection-type": "a2a"}],
        "extra-links": ["aistack_airflow.operators.a2a.AgentCardLink"],
    }
