"""infra/monitoring: dashboards query only metrics that exist, monitors select what aistack deploys.

Metric names come from their sources: the agents' prometheus_client registry, the
kube-state-metrics custom resource metrics defined in helm-values/kube-prometheus-stack.yaml, and
the Airflow chart's statsd mapping (tests/deploy/charts/). The Kubernetes side is checked against
an agent rendered by aistack.agents.workload and against `kubectl kustomize` (the pinned kubectl).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aistack.agents.metrics import AgentMetrics
from aistack.agents.workload import render
from aistack.resources import OllamaAgent, OllamaModelDefinition
from aistack.resources.validation import validate_paths

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "infra" / "monitoring"
DASHBOARDS = sorted((MONITORING / "dashboards").glob("*.json"))
KUBECTL = Path(sys.executable).parent / "kubectl"

# Words of PromQL that look like metric names: aggregations, functions, keywords.
PROMQL_WORDS = {
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "group",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "rate",
    "irate",
    "increase",
    "delta",
    "histogram_quantile",
    "label_values",
    "absent",
    "clamp_min",
    "vector",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not label names, functions or Grafana variables)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word, rest = match.group(), text[match.end() :].lstrip()
        if word in PROMQL_WORDS or rest.startswith("("):
            continue
        names.add(word)
    return names


# The series prometheus_client exposes per metric type (labelled metrics have no samples until used).
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "summary": ("", "_sum", "_count", "_created"),
}


def agent_metric_names() -> set[str]:
    return {family.name + suffix for family in AgentMetrics().registry.collect() for suffix in SERIES_SUFFIXES[family.type]}


def state_metric_names() -> set[str]:
    kps = yaml.safe_load((REPO / "helm-values" / "kube-prometheus-stack.yaml").read_text())
    resources = kps["kube-state-metrics"]["customResourceState"]["config"]["spec"]["resources"]
    return {f"{r['metricNamePrefix']}_{m['name']}" for r in resources for m in r["metrics"]}


def statsd_metric_names() -> set[str]:
    """Names the statsd exporter serves: gauges and counters as mapped, timers as summaries."""
    mapping = yaml.safe_load((Path(__file__).parent / "charts" / "airflow-1.19.0.statsd-mappings.yml").read_text())
    return {m["name"] + suffix for m in mapping["mappings"] for suffix in ("", "_sum", "_count")}


def known_metrics() -> set[str]:
    return agent_metric_names() | state_metric_names() | statsd_metric_names()


def expressions(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "query":
            exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", variable["query"]["query"]))
    return exprs


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_agent_registry_exports_the_names_the_dashboard_expects():
    metrics = AgentMetrics()
    metrics.observe_request("SendMessage", "jsonrpc", "ok", 0.2)
    metrics.observe_model_call("m", prompt_tokens=5, tokens=3, first_token=0.1, seconds=0.3)
    metrics.task_states.labels("TASK_STATE_COMPLETED").inc()
    metrics.rejections.labels("unauthorized").inc()
    metrics.push_deliveries.labels("delivered").inc()
    metrics.push_attempts.labels("ok").inc()
    served = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    names = agent_metric_names()
    assert served == names
    assert {
        "aistack_a2a_requests_total",
        "aistack_a2a_request_duration_seconds_bucket",
        "aistack_a2a_tokens_generated_total",
        "aistack_a2a_task_transitions_total",
    } <= names


def test_metric_names_are_read_from_promql():
    expr = (
        "histogram_quantile(0.95, sum by (le, agent) (rate(aistack_a2a_request_duration_seconds_bucket"
        '{agent=~"$agent", le!="x"}[5m]))) / on (agent) group_left () up{job="a"}'
    )
    assert metric_names(expr) == {"aistack_a2a_request_duration_seconds_bucket", "up"}


def test_a_misspelt_metric_is_caught():
    unknown = metric_names("sum(rate(aistack_a2a_request_total[5m]))") - known_metrics()
    assert unknown == {"aistack_a2a_request_total"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_only_existing_metrics(path):
    dashboard = load(path)
    exprs = expressions(dashboard)
    assert exprs and all(metric_names(e) for e in exprs)
    unknown = {name for e in exprs for name in metric_names(e)} - known_metrics()
    assert unknown == set()


def test_dashboards_are_distinct_and_complete():
    dashboards = [load(p) for p in DASHBOARDS]
    assert {d["uid"] for d in dashboards} == {"aistack-agents", "aistack-pipelines"}
    for d in dashboards:
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), d["uid"]
        assert all(p.get("targets") for p in d["panels"]), d["uid"]


def test_pipeline_dashboard_uses_every_source():
    names = {n for e in expressions(load(MONITORING / "dashboards" / "aistack-pipelines.json")) for n in metric_names(e)}
    assert names & state_metric_names() and names & statsd_metric_names()


def monitors() -> dict[str, dict]:
    docs = yaml.safe_load_all((MONITORING / "servicemonitors.yaml").read_text())
    return {d["metadata"]["name"]: d for d in docs}


def rendered_agent() -> tuple[dict, dict]:
    result = validate_paths([REPO / "examples" / "summarization-pipeline"])
    definitions = {d.name: d for d in result.of_kind(OllamaModelDefinition)}
    agent = next(a for a in result.of_kind(OllamaAgent) if a.name == "summarizer-agent")
    objects = {o["kind"]: o for o in render(agent, definitions[agent.spec.model_definition.name])}
    return objects["Service"], objects["Deployment"]


def test_agent_service_monitor_selects_the_rendered_agent():
    service, deployment = rendered_agent()
    monitor = monitors()["aistack-agents"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    pod_annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert endpoint["path"] == pod_annotations["prometheus.io/path"]
    # The relabelling names series after the Service label that holds the agent's name.
    source = endpoint["relabelings"][0]["sourceLabels"][0].removeprefix("__meta_kubernetes_service_label_")
    labels = {re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in service["metadata"]["labels"].items()}
    assert labels[source] == "summarizer-agent"


def test_agent_service_monitor_skips_other_services():
    selector = monitors()["aistack-agents"]["spec"]["selector"]["matchLabels"]
    airflow_statsd = {"tier": "airflow", "component": "statsd", "release": "airflow"}
    assert not selector.items() <= airflow_statsd.items()


def test_statsd_monitor_targets_the_airflow_release():
    monitor = monitors()["airflow-statsd"]
    assert monitor["metadata"]["namespace"] == "airflow"
    assert monitor["spec"]["selector"]["matchLabels"]["release"] == "airflow"
    assert monitor["spec"]["endpoints"][0]["port"] == "statsd-scrape"
    assert "helm install airflow " in (REPO / "helm-values" / "airflow.yaml").read_text()


def test_kustomization_builds_with_kubectl():
    built = subprocess.run([str(KUBECTL), "kustomize", str(MONITORING)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    objects = list(yaml.safe_load_all(built.stdout))
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == [
        ("ConfigMap", "aistack-agents-dashboard"),
        ("ConfigMap", "aistack-pipelines-dashboard"),
        ("ServiceMonitor", "airflow-statsd"),
        ("ServiceMonitor", "aistack-agents"),
    ]
    kps = yaml.safe_load((REPO / "helm-values" / "kube-prometheus-stack.yaml").read_text())
    sidecar = kps["grafana"]["sidecar"]["dashboards"]
    for config_map in (o for o in objects if o["kind"] == "ConfigMap"):
        assert config_map["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
        assert sidecar["folderAnnotation"] in config_map["metadata"]["annotations"]
        (body,) = config_map["data"].values()
        assert json.loads(body)["uid"] in {"aistack-agents", "aistack-pipelines"}
