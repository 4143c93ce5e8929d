"""Which `{{.ResponseFormat}}` text leads the bundled small model to echo schema words.

Run by hand (not a test):

    .venv/bin/python bench/response_format_echo.py [--seeds 2] [--documents examples/documents]

The seed's summarizer template ends with `Response format: {{.ResponseFormat}}`. What that
variable says is aistack's choice (aistack.models.modelfile.response_format_text). Each candidate text
below is built into a variant of the seed's summarizer model on the embedded runtime (started
here as its own process), and each variant summarizes every document, with the agent's own
options and the bounded schema the agent sends, for each seed. Per candidate it prints the
answers that echo schema words ("items", "type", "array", property names) as items, the mean
share of statements grounded in the document (aistack.agents.quality), and the time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def candidates(schema: dict) -> dict[str, str]:
    from aistack.models.modelfile import describe_format

    return {
        "json-schema (before)": "A single JSON object, and nothing else, matching this JSON schema: " + json.dumps(schema, sort_keys=True),
        "skeleton": "JSON like " + json.dumps({k: ["..."] for k in schema["properties"]}),
        "shipped (describe_format)": describe_format(schema),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--documents", type=Path, default=ROOT / "examples" / "documents")
    parser.add_argument("--temperature", type=float, default=None, help="replace the agent's temperature")
    args = parser.parse_args()

    import ollama

    from aistack.agents.limits import bounded_schema
    from aistack.agents.profile import chat_options
    from aistack.agents.quality import measure
    from aistack.local.project import load_project
    from aistack.models.modelfile import build_request, output_format, translate_template
    from aistack.runtime.config import RuntimeConfig
    from aistack.runtime.endpoint import embedded_server

    project = load_project([ROOT / "examples" / "summarization-pipeline"])
    agent, definition = next((a, d) for a, d in project.agents if a.name == "summarizer-agent")
    schema = output_format(definition)
    options = chat_options(agent, definition)
    if args.temperature is not None:
        options["temperature"] = args.temperature
    documents = sorted(p for p in args.documents.iterdir() if p.is_file())
    request = build_request(definition)
    with tempfile.TemporaryDirectory() as home, embedded_server(RuntimeConfig(store=Path(home) / "ollama", n_ctx=4096)) as server:
        client = ollama.Client(host=server.url, timeout=300)
        print(f"model: {definition.model_name} on {server.url}; options {options}; {len(documents)} documents x {args.seeds} seeds\n")
        for label, text in candidates(schema).items():
            variant = f"rf-{abs(hash(label)) % 10**8}:latest"
            client.create(
                model=variant,
                from_=definition.spec.from_,
                system=request.system,  # substituted, as in a run
                template=translate_template(definition.spec.build.template, text),
                parameters=request.parameters,
            )
            echoes, grounded, seconds, invalid = 0, [], [], 0
            for document in documents:
                content = document.read_text()
                for seed in range(1, args.seeds + 1):
                    started = time.perf_counter()
                    answer = client.chat(
                        model=variant,
                        messages=[{"role": "user", "content": "Work on the inputs below.\n\n" + content}],
                        format=bounded_schema(schema),
                        options=options | {"seed": seed},
                    )
                    seconds.append(time.perf_counter() - started)
                    try:
                        value = json.loads(answer.message.content, strict=False)
                    except ValueError:
                        invalid += 1
                        continue
                    evidence = measure(value, content, schema)
                    echoes += bool(evidence.schema_words)
                    grounded.append(evidence.grounded_share)
            runs = len(documents) * args.seeds
            print(
                f"{label:22} schema-word echoes {echoes}/{runs}   grounded {statistics.mean(grounded or [0]):.0%}   "
                f"invalid {invalid}   {statistics.median(seconds):.1f}s median"
            )
            print(f"{'':22} text: {text[:110]}{'...' if len(text) > 110 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
