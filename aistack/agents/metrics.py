"""Prometheus metrics of one agent server, in a registry of its own.

A per-app registry (not prometheus_client's global one) lets several agents run in one process
(`aistack agents serve`, the tests) without their series clashing; each agent's `/metrics`
shows its own. In a cluster the scrape target's labels say which agent it is, so no series
carries an agent label; the model's do carry the model (an agent's model can be swapped).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "aistack_a2a_requests",
            "A2A operations handled, by operation, transport and outcome (ok or the error).",
            ["operation", "transport", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "aistack_a2a_request_duration_seconds",
            "Time to answer an A2A operation (streams: until the stream ends).",
            ["operation", "transport"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rejections = Counter(
            "aistack_a2a_http_rejections",
            "Requests refused before reaching A2A, by reason (unauthorized, too_large).",
            ["reason"],
            registry=r,
        )
        self.tokens = Counter("aistack_a2a_tokens_generated", "Tokens the model generated for tasks (its own count).", ["model"], registry=r)
        self.prompt_tokens = Counter("aistack_a2a_prompt_tokens", "Prompt tokens the model read for tasks (its own count).", ["model"], registry=r)
        self.first_token = Histogram(
            "aistack_a2a_time_to_first_token_seconds",
            "From the model call to its first token.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_calls = Histogram(
            "aistack_a2a_model_call_duration_seconds",
            "One model call, from the request to its last token.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.task_states = Counter(
            "aistack_a2a_task_transitions",
            "Tasks entering each state (TASK_STATE_*).",
            ["state"],
            registry=r,
        )
        self.push_deliveries = Counter(
            "aistack_a2a_push_deliveries",
            "Push notifications by outcome: delivered, failed (after retries), refused (SSRF guard).",
            ["outcome"],
            registry=r,
        )
        self.push_attempts = Counter(
            "aistack_a2a_push_attempts",
            "Push notification HTTP attempts, retries included, by result.",
            ["result"],
            registry=r,
        )

    def observe_request(self, operation: str, transport: str, outcome: str, seconds: float) -> None:
        self.requests.labels(operation, transport, outcome).inc()
        self.latency.labels(operation, transport).observe(seconds)

    def observe_model_call(self, model: str, *, prompt_tokens: int | None, tokens: int, first_token: float | None, seconds: float) -> None:
        if tokens:
            self.tokens.labels(model).inc(tokens)
        if prompt_tokens:
            self.prompt_tokens.labels(model).inc(prompt_tokens)
        if first_token is not None:
            self.first_token.labels(model).observe(first_token)
        self.model_calls.labels(model).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
