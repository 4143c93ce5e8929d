"""Traces across the hops of a pipeline step: the Airflow task, the A2A request, the agent and its
model call, as OpenTelemetry spans with the GenAI semantic conventions.

The W3C trace context travels in the A2A request's HTTP headers (`traceparent`, `tracestate`):
the client injects the caller's context into every request it sends (aistack.agents.client), the
agent extracts it (aistack.agents.handler) and parents its spans on it. So the step's span, the
agent's span and the model call's span are one trace, and when Airflow's own tracing is on
(`[traces] otel_on`) they are children of Airflow's task span, in Airflow's trace of the run.
Without Airflow's tracing, a run's steps still share one trace: its id is derived from the DAG
run (`run_context`).

Export is off by default. With `AISTACK_OTLP_ENDPOINT` set, aistack's processes (the agents, the
pipeline tasks) export their spans through OTLP over HTTP, unless the process already has an SDK
tracer provider (Airflow's, when its tracing is on: the spans then go where Airflow's go).
Without either, spans are not recorded, but the context still travels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from aistack import settings

INSTRUMENTATION = "aistack"

_provider: Any = None  # aistack's own tracer provider, once configured (or set by a test)


def use(provider: Any) -> None:
    """Record aistack's spans with `provider` (tests: one with an in-memory exporter)."""
    global _provider
    _provider = provider


def configure(service: str) -> None:
    """Export this process's spans through OTLP when AISTACK_OTLP_ENDPOINT is set and no SDK
    tracer provider is there already (Airflow's); otherwise leave tracing as it is."""
    endpoint = settings.otlp_endpoint()
    if not endpoint or _provider is not None:
        return
    from opentelemetry.sdk.trace import TracerProvider

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    use(provider)


def tracer() -> trace.Tracer:
    return (_provider or trace.get_tracer_provider()).get_tracer(INSTRUMENTATION)


def flush() -> None:
    """Send what is buffered (a task process ends right after its task)."""
    provider = _provider or trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush(timeout_millis=5000)


def run_context(dag_id: str, run_id: str) -> otel_context.Context | None:
    """The parent of a step's span: the current span when there is one (Airflow's task span),
    else a context whose trace id is derived from the DAG run, so every step of a run, in
    whichever process, is in one trace."""
    if trace.get_current_span().get_span_context().is_valid:
        return None
    digest = hashlib.sha256(f"{dag_id}\n{run_id}".encode()).digest()
    root = SpanContext(int.from_bytes(digest[:16], "big"), int.from_bytes(digest[16:24], "big"), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(root))


def inject(headers: Any) -> None:
    """Put the current trace context into outgoing HTTP headers."""
    propagate.inject(headers)


def extract(headers: Mapping[str, str]) -> otel_context.Context:
    """The trace context of an incoming request."""
    return propagate.extract(headers)


def current() -> otel_context.Context:
    return otel_context.get_current()


def attach(context: otel_context.Context) -> object:
    return otel_context.attach(context)


def detach(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]  # the token attach() returned


def annotate(attributes: Mapping[str, Any]) -> None:
    """Add attributes to the current span (nothing when none is recorded)."""
    trace.get_current_span().set_attributes({k: v for k, v in attributes.items() if v is not None})


def usage_attributes(usage: Mapping[str, Any]) -> dict[str, Any]:
    """GenAI semantic-convention attributes of a call's usage (aistack.agents.usage)."""
    attributes = {
        "gen_ai.response.model": usage.get("model"),
        "gen_ai.usage.input_tokens": usage.get("promptTokens"),
        "gen_ai.usage.output_tokens": usage.get("completionTokens"),
        "aistack.model.digest": usage.get("digest"),
    }
    return {k: v for k, v in attributes.items() if v is not None}
