"""One pipeline run is one trace, across the real HTTP hops: each step's span (the Airflow task's
side of the A2A call), the agent's span in the agent server (parented by the `traceparent` the
request carried), and its model call's span, with the GenAI semantic conventions. Run through
dag.test() against real A2A agent servers on 127.0.0.1 whose models are deterministic fakes; the
spans go to an in-memory exporter."""

import pytest
from opentelemetry.trace import SpanKind

from aistack.agents.fakes import ScriptedModel

pytestmark = pytest.mark.slow

PIPELINE = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: traced}
spec:
  input: {text: "How long did they stay on the Moon?"}
  pipeline:
    - {name: answer, agentRef: chat-agent, artifacts: [{name: answer, type: text/plain}]}
    - {name: check, agentRef: summarizer-agent, dependsOn: [answer], includeInput: false}
"""


def test_a_run_is_one_trace_from_the_task_through_the_agent_to_the_model_fake_models(pipeline, recorded_spans):
    run, fakes, _ = pipeline
    fakes["chat-agent"] = ScriptedModel(["They stayed twenty one hours."])
    fakes["summarizer-agent"] = ScriptedModel(['{"summary": "A short stay."}'])
    first = run(PIPELINE, "aistack__default__traced")
    assert first.state == "success"
    finished = recorded_spans.get_finished_spans()
    assert len({span.context.trace_id for span in finished}) == 1, "one trace for the whole run"

    steps = {span.attributes["airflow.task_id"]: span for span in finished if span.kind is SpanKind.CLIENT and span.name.startswith("invoke_agent")}
    assert sorted(steps) == ["answer", "check"]
    assert steps["answer"].name == "invoke_agent chat-agent" and steps["answer"].attributes["airflow.dag_run.run_id"] == first.run_id
    for task, model in (("answer", "chat-model:1.0.0"), ("check", "summarizer-model:1.0.0")):
        step = steps[task]
        (agent,) = [s for s in finished if s.kind is SpanKind.SERVER and s.parent is not None and s.parent.span_id == step.context.span_id]
        assert agent.parent.is_remote, "the agent's span was parented across the HTTP hop"
        assert agent.attributes["gen_ai.operation.name"] == "invoke_agent" and agent.attributes["gen_ai.request.model"] == model
        (call,) = [s for s in finished if s.name == f"chat {model}" and s.parent is not None and s.parent.span_id == agent.context.span_id]
        assert call.kind is SpanKind.CLIENT and call.attributes["gen_ai.operation.name"] == "chat" and call.attributes["gen_ai.provider.name"] == "ollama"
        assert call.attributes["gen_ai.usage.output_tokens"] > 0 and call.attributes["gen_ai.usage.input_tokens"] > 0
        assert step.attributes["gen_ai.usage.output_tokens"] == call.attributes["gen_ai.usage.output_tokens"], "the step's span has the agent's report"
        assert call.start_time >= agent.start_time and call.end_time <= agent.end_time <= step.end_time

    recorded_spans.clear()
    second = run(PIPELINE, "aistack__default__traced")
    assert {span.context.trace_id for span in recorded_spans.get_finished_spans()} != {steps["answer"].context.trace_id}, "another run, another trace"
    assert second.run_id != first.run_id
