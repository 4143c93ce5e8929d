"""Where a step's span hangs (Airflow's task span, else the run's own trace), and when aistack exports
spans itself (only with AISTACK_OTLP_ENDPOINT, and never over a tracer provider already there)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from aistack import telemetry


def test_the_steps_of_a_run_share_a_trace_derived_from_the_run(recorded_spans):
    for task in ("a", "b"):
        with telemetry.tracer().start_as_current_span(task, context=telemetry.run_context("dag", "run-1")):
            pass
    with telemetry.tracer().start_as_current_span("c", context=telemetry.run_context("dag", "run-2")):
        pass
    a, b, c = recorded_spans.get_finished_spans()
    assert a.context.trace_id == b.context.trace_id != c.context.trace_id
    assert a.parent.span_id == b.parent.span_id and a.context.span_id != b.context.span_id


def test_under_airflows_task_span_a_step_is_its_child(recorded_spans):
    with telemetry.tracer().start_as_current_span("worker.answer") as airflow_task:  # as Airflow's task runner makes it
        assert telemetry.run_context("dag", "run-1") is None
        with telemetry.tracer().start_as_current_span("invoke_agent chat-agent", context=telemetry.run_context("dag", "run-1")):
            headers: dict[str, str] = {}
            telemetry.inject(headers)
    step = recorded_spans.get_finished_spans()[0]
    assert step.parent.span_id == airflow_task.get_span_context().span_id
    assert headers["traceparent"].startswith(f"00-{step.context.trace_id:032x}-{step.context.span_id:016x}-"), "what the A2A request carries"
    carried = telemetry.extract(headers)
    with telemetry.tracer().start_as_current_span("invoke_agent (agent side)", context=carried):
        pass
    assert recorded_spans.get_finished_spans()[-1].parent.span_id == step.context.span_id


def test_nothing_is_exported_unless_an_endpoint_is_set(monkeypatch):
    monkeypatch.delenv("AISTACK_OTLP_ENDPOINT", raising=False)
    telemetry.use(None)
    telemetry.configure("aistack-test")
    assert telemetry._provider is None
    monkeypatch.setenv("AISTACK_OTLP_ENDPOINT", "http://127.0.0.1:9/v1/traces")  # nothing listens: export fails quietly
    try:
        telemetry.configure("aistack-test")
        assert isinstance(telemetry._provider, TracerProvider)
        assert telemetry._provider.resource.attributes["service.name"] == "aistack-test"
    finally:
        telemetry._provider.shutdown()
        telemetry.use(None)
