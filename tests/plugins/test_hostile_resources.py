"""A standing hostile-input suite for the pipelines' DAG file: one folder of good resources and of
everything a user of a shared cluster can put beside them (injection attempts in every text field
that reaches Airflow, names Kubernetes would refuse, bombs, huge values, broken files).

Airflow's own DagBag parses `dags/task_orchestrations.py` over that folder, under its import
timeout, as the DAG processor does. Every good pipeline must load as its DAG, every bad resource
must be reported by name (or by file, when it has none) in an invalid DAG, and nothing of any
resource may reach a templated field.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from aistack.pipelines.plan import dag_id_for

pytestmark = pytest.mark.slow

INJECTIONS = (
    "{% endraw %}{{ conn.aws_default.password | lower }}{% raw %}",
    "{%- endraw -%}{{ var.value.secret }}{%- raw -%}",
    "{{ ti.xcom_pull(dag_id='aistack__team-b__victim', task_ids='answer') }}",
    "{{ macros.datetime.now() }} ${HOME} $(id) `id` %(x)s {x}",
)

GOOD_SPEC = {
    "input": {"text": "Question: what is 2 + 2?\n\nContext: 2 + 2 is 4."},
    "pipeline": [{"name": "answer", "agentRef": "chat-agent", "prompt": "Answer from the context."}],
}


def orchestration(name: str, namespace: str = "default", spec: dict | None = None, **metadata) -> dict:
    return {
        "apiVersion": "ai.stack/v1alpha1",
        "kind": "TaskOrchestration",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": spec or GOOD_SPEC,
    }


def injected(name: str, injection: str) -> dict:
    """A valid pipeline carrying `injection` in every free-text field that reaches Airflow."""
    return orchestration(
        name,
        "team-a",
        {
            "input": {"text": f"Summarize: {injection}", "format": "text/markdown"},
            "pipeline": [
                {
                    "name": "analyze",
                    "agentRef": "analyzer-agent",
                    "prompt": injection,
                    "artifacts": [
                        {
                            "name": "analysis",
                            "type": "application/json",
                            "schema": {"type": "object", "description": injection, "properties": {"summary": {"type": "string", "description": injection}}},
                        }
                    ],
                },
                {
                    "name": "check",
                    "agentRef": "qa-agent",
                    "dependsOn": ["analyze"],
                    "prompt": injection,
                    "inputFrom": [{"taskRef": "analyze", "artifactName": "analysis"}],
                },
            ],
            "communication": {"pushNotifications": {"enabled": True, "endpoint": "http://127.0.0.1:9/hook?q={{conn}}"}},
            "output": {"storage": {"type": "s3", "bucket": "ai-results", "prefix": "team-a/"}},
        },
    )


def exponential_template(levels: int = 40) -> str:
    """Go template defines that each call the one before twice: 2**levels calls when walked naively."""
    lines = ['{{define "t0"}}x{{end}}']
    lines += [f'{{{{define "t{i}"}}}}{{{{template "t{i - 1}" .}}}}{{{{template "t{i - 1}" .}}}}{{{{end}}}}' for i in range(1, levels)]
    return "".join(lines) + f'{{{{template "t{levels - 1}" .}}}}{{{{ .Prompt }}}}'


def nested(depth: int) -> str:
    """A JSON schema nested `depth` objects deep, as text (too deep for json.dumps to write)."""
    return '{"type": "object", "properties": {"x": ' * depth + '{"type": "string"}' + "}}" * depth


BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: bomb}
spec: {input: {text: "x"}, pipeline: [{name: a, agentRef: b, prompt: *g}]}
"""


def hostile_folder(folder: Path) -> tuple[list[str], dict[str, str]]:
    """Write the suite's folder; returns the good DAG ids and, for each bad resource, the dag_id it
    must be reported under with the text its report must contain."""

    def put(file: str, *documents: dict | str) -> None:
        texts = [d if isinstance(d, str) else json.dumps(d) + "\n" for d in documents]  # JSON is YAML, at any depth
        (folder / file).write_text("---\n".join(texts))

    good = [f"good-{i}" for i in range(5)]
    for name in good:
        put(f"{name}.yaml", orchestration(name))
    put("injected.yaml", *(injected(f"injected-{i}", text) for i, text in enumerate(INJECTIONS)))
    long_a, long_b = "a" * 253, "a" * 163 + "-" + "b" * 89
    put("long-names.yaml", orchestration(long_a, "n" * 63), orchestration(long_b, "n" * 63))
    put(
        "model.yaml",
        {
            "apiVersion": "ai.stack/v1alpha1",
            "kind": "OllamaModelDefinition",
            "metadata": {"name": "exponential"},
            "spec": {"from": "smollm2:135m", "build": {"template": exponential_template()}},
        },
    )
    good_ids = [dag_id_for("default", name) for name in good]
    good_ids += [dag_id_for("team-a", f"injected-{i}") for i in range(len(INJECTIONS))]
    good_ids += [dag_id_for("n" * 63, long_a), dag_id_for("n" * 63, long_b)]

    bad: dict[str, str] = {}

    def refuse(file: str, document: dict | str, namespace: str, name: str, says: str) -> None:
        put(file, document)
        bad[dag_id_for(namespace, name)] = says

    def nameless(file: str, text: str, says: str) -> None:
        (folder / file).write_text(text)
        bad[dag_id_for("default", f"?({folder / file}#0)")] = says

    nameless("empty.yaml", "", "it is empty")
    nameless("dashes.yaml", "---\n---\n", "it is empty")
    nameless("syntax.yaml", "apiVersion: ai.stack/v1alpha1\nkind: TaskOrchestration\nmetadata: {name: x\n", "YAML syntax error")
    nameless("generate-name.yaml", yaml.safe_dump({**orchestration("x"), "metadata": {"generateName": "qa-"}}), "metadata.name: required field is missing")
    refuse("bomb.yaml", BOMB, "default", "bomb", "spec.pipeline[0].prompt: expected a string")
    refuse("bad-name.yaml", orchestration("bad name!"), "default", "bad name!", "invalid name 'bad name!'")
    refuse("newline.yaml", orchestration("abc\n"), "default", "abc\n", "invalid name")
    dotted = ".".join(["a" * 60] * 4)[:243]
    refuse("long-namespace.yaml", orchestration("summary", dotted), dotted, "summary", "namespace is 243 characters long")
    refuse(
        "traversal.yaml",
        orchestration("traversal", spec={**GOOD_SPEC, "output": {"storage": {"type": "local", "path": "/tmp/x", "prefix": "../../../tmp/elsewhere/"}}}),
        "default",
        "traversal",
        "spec.output.storage.prefix",
    )
    refuse(
        "huge-input.yaml",
        orchestration("huge-input", spec={**GOOD_SPEC, "input": {"text": "x" * 70_000}}),
        "default",
        "huge-input",
        "is 70,000 characters long; the limit is 65,536",
    )
    refuse(
        "huge-prompt.yaml",
        orchestration("huge-prompt", spec={**GOOD_SPEC, "pipeline": [{"name": "a", "agentRef": "b", "prompt": "y" * 20_000}]}),
        "default",
        "huge-prompt",
        "the limit is 16,384",
    )
    refuse(
        "many-steps.yaml",
        orchestration("many-steps", spec={**GOOD_SPEC, "pipeline": [{"name": f"s{i}", "agentRef": "b"} for i in range(150)]}),
        "default",
        "many-steps",
        "spec.pipeline",
    )
    deep = json.dumps(
        orchestration(
            "deep-schema",
            spec={**GOOD_SPEC, "pipeline": [{"name": "a", "agentRef": "b", "artifacts": [{"name": "r", "type": "application/json", "schema": "SCHEMA"}]}]},
        )
    )
    nameless("deep-schema.yaml", deep.replace('"SCHEMA"', nested(300)), "nested too deeply")
    put("conflict.yaml", orchestration("twice", spec=GOOD_SPEC), orchestration("twice", spec={**GOOD_SPEC, "input": {"text": "another input"}}))
    bad[dag_id_for("default", "twice")] = "defined differently"
    return good_ids, bad


def test_every_good_pipeline_loads_and_every_hostile_resource_is_reported_by_name(tmp_path: Path, repo: Path, monkeypatch, airflow_db):
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import BundleDagBag

    folder = tmp_path / "resources"
    folder.mkdir()
    good, bad = hostile_folder(folder)
    monkeypatch.setenv("AISTACK_ORCHESTRATIONS_PATH", str(folder))
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "home"))
    timeout = conf.getfloat("core", "dagbag_import_timeout")

    started = time.monotonic()
    bag = BundleDagBag(dag_folder=repo / "dags" / "task_orchestrations.py", bundle_path=repo / "dags", bundle_name="hostile")
    took = time.monotonic() - started

    assert not bag.import_errors, bag.import_errors
    assert took < timeout, f"the DAG file took {took:.1f} s, over Airflow's import timeout of {timeout:.0f} s"
    for dag_id in good:
        assert dag_id in bag.dags and "invalid" not in bag.dags[dag_id].tags, f"{dag_id} did not load"
    for dag_id, says in bad.items():
        assert dag_id in bag.dags, f"a hostile resource is not reported: {dag_id}"
        dag = bag.dags[dag_id]
        assert "invalid" in dag.tags and says in dag.doc_md, (dag_id, dag.doc_md)
    assert set(bag.dags) == {*good, *bad, "aistack_task_orchestrations"}
    index = bag.dags["aistack_task_orchestrations"].doc_md
    assert "`default/bad name!`" in index and "\n- `default/abc\\n`" in index, "names are shown on one line each"

    for dag_id in good:
        for task in bag.dags[dag_id].tasks:
            for field in task.template_fields:
                value = repr(getattr(task, field))
                assert "{{" not in value and "{%" not in value, f"{dag_id}.{task.task_id}.{field} holds template text: {value[:200]}"
