"""One document start to finish (process_document), and pinning the model's identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aistack.documents.manifest import SKIPPED, SUMMARIZED, output_keys
from aistack.documents.model import FROM_NAME, FROM_OLLAMA, ModelIdentity, agent_model, ollama_digest, resolve_identity
from aistack.documents.pipeline import ChunkBudget, DocumentFailed, process_document
from aistack.documents.storage import LocalStore

from .support import RecordingSummarizer, closed_port_url, create_model, summarizer_pair

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "documents"
IDENTITY = ModelIdentity("summarizer-agent", "default", "http://agent", "summarizer-model:1.0.0", "ab12" * 16, FROM_OLLAMA)
SETTINGS = ChunkBudget(max_chunk_tokens=200, overlap_tokens=24)


@pytest.fixture
def stores(tmp_path: Path):
    source, output = LocalStore(tmp_path / "in"), LocalStore(tmp_path / "out")
    for name in ("gettysburg-address.txt", "field-report.html"):
        source.write(name, (EXAMPLES / name).read_bytes())
    return source, output


def ref_of(store: LocalStore, key: str):
    return next(r for r in store.list() if r.key == key)


class Factory:
    """Counts how often a summarizer is asked for (a skipped document asks for none)."""

    def __init__(self, summarizer: RecordingSummarizer | None = None) -> None:
        self.summarizer = summarizer or RecordingSummarizer()
        self.made = 0

    def __call__(self) -> RecordingSummarizer:
        self.made += 1
        return self.summarizer


def test_a_document_is_summarized_into_markdown_and_json(stores):
    source, output = stores
    factory = Factory()
    outcome = process_document(ref_of(source, "gettysburg-address.txt"), source, output, IDENTITY, SETTINGS, factory, run_id="r1")
    assert outcome["status"] == SUMMARIZED and outcome["chunks"] > 1
    assert outcome["modelCalls"] == len(factory.summarizer.calls) > outcome["chunks"]
    assert factory.summarizer.closed == 1
    record = json.loads(Path(outcome["outputs"]["json"]).read_text())
    assert record["contentSha256"] == outcome["contentSha256"] and record["modelDigest"] == IDENTITY.digest
    assert record["recipe"]["fingerprint"] == SETTINGS.recipe().fingerprint and record["runId"] == "r1"
    assert record["summary"] and len(record["parts"]) == record["chunks"]
    assert "Address Delivered at the Dedication" in record["parts"][0]
    markdown = Path(outcome["outputs"]["markdown"]).read_text()
    assert markdown.startswith("# Summary: gettysburg-address.txt\n") and "## Parts" in markdown
    assert IDENTITY.digest in markdown and outcome["contentSha256"] in markdown


def test_the_same_bytes_and_model_are_skipped_without_calling_the_agent(stores):
    source, output = stores
    ref = ref_of(source, "field-report.html")
    first = process_document(ref, source, output, IDENTITY, SETTINGS, Factory())
    factory = Factory()
    again = process_document(ref, source, output, IDENTITY, SETTINGS, factory)
    assert again == {"key": "field-report.html", "status": SKIPPED, "contentSha256": first["contentSha256"], "outputs": first["outputs"]}
    assert factory.made == 0
    forced = process_document(ref, source, output, IDENTITY, SETTINGS, factory, force=True)
    assert forced["status"] == SUMMARIZED and factory.made == 1


def test_a_changed_document_model_or_recipe_is_summarized_again_under_new_keys(stores):
    source, output = stores
    ref = ref_of(source, "field-report.html")
    first = process_document(ref, source, output, IDENTITY, SETTINGS, Factory())
    other_model = ModelIdentity(**{**IDENTITY.__dict__, "digest": "cd34" * 16})
    by_model = process_document(ref, source, output, other_model, SETTINGS, Factory())
    by_recipe = process_document(ref, source, output, IDENTITY, ChunkBudget(max_chunk_tokens=300, overlap_tokens=24), Factory())
    source.write("field-report.html", (EXAMPLES / "field-report.html").read_bytes().replace(b"five people", b"four people"))
    by_content = process_document(ref_of(source, "field-report.html"), source, output, IDENTITY, SETTINGS, Factory())
    outcomes = [first, by_model, by_recipe, by_content]
    assert [o["status"] for o in outcomes] == [SUMMARIZED] * 4
    assert len({o["outputs"]["json"] for o in outcomes}) == 4
    assert by_content["contentSha256"] != first["contentSha256"]
    assert all(Path(o["outputs"]["json"]).exists() for o in outcomes), "earlier summaries stay"


def test_a_damaged_summary_record_is_replaced(stores):
    source, output = stores
    ref = ref_of(source, "field-report.html")
    first = process_document(ref, source, output, IDENTITY, SETTINGS, Factory())
    Path(first["outputs"]["json"]).write_text('{"contentSha256": "trunc')
    assert process_document(ref, source, output, IDENTITY, SETTINGS, Factory())["status"] == SUMMARIZED
    assert json.loads(Path(first["outputs"]["json"]).read_text())["summary"]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"caf\xe9 au lait", "not UTF-8 text: byte 0xe9 at offset 3"),
        (b"<!-- only a comment -->\n", "empty after cleaning"),
    ],
)
def test_bad_content_fails_permanently_with_its_hash(stores, content, error):
    source, output = stores
    source.write("bad.md", content)
    with pytest.raises(DocumentFailed) as failed:
        process_document(ref_of(source, "bad.md"), source, output, IDENTITY, SETTINGS, Factory())
    assert failed.value.permanent and error in failed.value.error
    assert failed.value.content_sha256 and failed.value.to_json()["key"] == "bad.md"
    assert not (output.root / "summaries").exists()


def test_a_failing_agent_is_a_retryable_failure_and_writes_nothing(stores):
    source, output = stores
    factory = Factory(RecordingSummarizer({0: ConnectionError("agent down")}))
    with pytest.raises(DocumentFailed, match="agent down") as failed:
        process_document(ref_of(source, "field-report.html"), source, output, IDENTITY, SETTINGS, factory)
    assert not failed.value.permanent and factory.summarizer.closed == 1
    keys = output_keys("field-report.html", failed.value.content_sha256, IDENTITY.digest, SETTINGS.recipe())
    assert output.read_optional(keys.json) is None and output.read_optional(keys.markdown) is None


def test_a_budget_that_cannot_work_is_refused_early():
    with pytest.raises(ValueError, match="overlap_tokens"):
        ChunkBudget(max_chunk_tokens=100, overlap_tokens=80)


# -- the model's identity ------------------------------------------------------------------


@pytest.fixture
def served_agent(repo, tmp_path, monkeypatch):
    """summarizer-agent served on 127.0.0.1 with a fake model backend; yields (url, definition)."""
    from aistack.agents.runner import serve_agents

    from .support import ExtractiveFakeModel

    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AISTACK_AGENT_TOKEN", "documents-test-token")
    agent, definition = summarizer_pair(repo, model_name="documents-identity-model")
    with serve_agents([(agent, definition)], backends=lambda a, d: ExtractiveFakeModel()) as [running]:
        yield running.url, definition


def test_identity_is_the_agents_model_and_its_ollama_digest_fake_model(served_agent, embedded_ollama):
    url, definition = served_agent
    assert agent_model(url) == "documents-identity-model:1.0.0"
    digest = create_model(embedded_ollama, definition)
    assert ollama_digest(definition.model_name, embedded_ollama) == digest
    identity = resolve_identity("summarizer-agent", "default", url, embedded_ollama)
    assert identity == ModelIdentity("summarizer-agent", "default", url, "documents-identity-model:1.0.0", digest, FROM_OLLAMA)
    assert ModelIdentity.from_json(identity.to_json()) == identity


def test_identity_falls_back_to_the_model_name_without_ollama_fake_model(served_agent):
    url, _ = served_agent
    identity = resolve_identity("summarizer-agent", "default", url, closed_port_url())
    assert (identity.digest, identity.source) == ("name:documents-identity-model:1.0.0", FROM_NAME)


def test_an_agent_that_does_not_answer_is_an_identity_error():
    from aistack.documents.model import ModelIdentityError

    with pytest.raises(ModelIdentityError, match="cannot read the model"):
        agent_model(closed_port_url(), timeout=2)
