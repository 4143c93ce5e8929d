"""The A2A layer: each OllamaAgent served as an A2A (Agent-to-Agent protocol 1.0) agent that
answers with its Ollama model, and the client aistack uses to call agents.

Built on a2a-sdk 1.x (its route factories and DefaultRequestHandler); this package adds what
makes an agent out of an OllamaAgent resource. Modules, one job each:

- `profile`: the agent as decided from its OllamaAgent and OllamaModelDefinition (model, options, format).
- `card`: the agent card (skills from capabilities, interfaces, bearer security scheme).
- `backend`: the model interface and the Ollama implementation (official `ollama` client).
- `fakes`: deterministic fake models for tests and benchmarks (EchoModelBackend, ScriptedModel).
- `inputs`: message parts (text, JSON data, inline text files) rendered into the prompt.
- `conversation`: earlier turns per contextId (multi-turn).
- `artifacts`: output artifacts and the metadata convention to request them by name and media type.
- `limits`: the bounds of one model call: tokens, seconds, the size of a JSON answer.
- `executor`: one task = one model call: events, streaming, JSON validation and retry, cancel.
- `verdict`: a quality check's verdict bounded by the evidence aistack.agents.quality measures.
- `store`: the task store, observed (state metrics) and bounded, each task its owner's.
- `handler`: the SDK request handler plus metrics, input checks, idempotent re-sends and
  push configs read back without their secrets.
- `webhooks`: the SSRF guard and the retrying POST (reused for pipeline events).
- `push`: A2A push notifications delivered with `webhooks`.
- `security`: bearer authentication and the body size limit (ASGI middleware).
- `tokens`: the bearer tokens an agent accepts (the shared one, one per namespace) and whom
  each one identifies.
- `metrics`, `logs`: Prometheus metrics per agent, structured logs with task and context ids.
- `app`: one agent's Starlette application (A2A routes, /healthz, /readyz, /metrics).
- `runner`: several agents in one process, each on its own port; `serve_agents()`.
- `registry`: the local agent registry file Airflow reads.
- `provision`: build the models agents need that Ollama lacks.
- `client`: call agents (async and sync), results as plain data, clear errors.
- `cli`: `aistack agents serve`.

Nothing is imported by `import aistack.agents`; import the module you need.
"""
