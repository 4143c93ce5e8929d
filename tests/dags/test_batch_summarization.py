"""The batch_summarization DAG with dag.test(), against a real summarizer agent on 127.0.0.1.

The `_fake_model` tests serve the seed's summarizer-agent with a deterministic fake model
backend (ExtractiveFakeModel: it answers with the first sentence of what it is given, as JSON
shaped like the summarizer's schema), so they check the DAG: selection by interval, mapping,
idempotency, failures, manifests, S3. The model's digest comes from the session's embedded
Ollama, where the test builds the agent's model definition. The `_real_model` test goes all
the way to SmolLM2 in the embedded runtime.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from aistack.agents.runner import serve_agents
from tests.aistack.documents.support import (
    BUCKET,
    ExtractiveFakeModel,
    create_model,
    first_sentence,
    moto_s3,
    s3_client,
    summarizer_pair,
)

pytestmark = pytest.mark.slow

UTC = UTC
DAY = datetime(2026, 3, 1, tzinfo=UTC)  # the data interval of the runs: [DAY, DAY + 1 day)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "documents"
DOCUMENTS = sorted(p.name for p in EXAMPLES.iterdir())
ENV = (
    "AISTACK_SUMMARIZATION_SCHEDULE",
    "AISTACK_SUMMARIZATION_CATCHUP",
    "AISTACK_SUMMARIZATION_SOURCE",
    "AISTACK_SUMMARIZATION_OUTPUT",
    "AISTACK_SUMMARIZATION_AWS_CONN_ID",
    "AISTACK_SUMMARIZER_AGENT",
    "AISTACK_SUMMARIZER_NAMESPACE",
    "AISTACK_SUMMARIZATION_OLLAMA_HOST",
    "AISTACK_SUMMARIZATION_MAX_CHUNK_TOKENS",
    "AISTACK_SUMMARIZATION_OVERLAP_TOKENS",
    "AISTACK_SUMMARIZATION_PARALLELISM",
    "AISTACK_SUMMARIZATION_RETRIES",
)


def run_dag(day: datetime = DAY, **conf):
    """One run of the DAG (module reloaded: it reads its settings at import) for the day's interval."""
    import aistack_airflow.dags.batch_summarization as module

    dag = importlib.reload(module).dag
    return dag.test(logical_date=day + timedelta(days=1), run_conf=conf or None)


def summarize_states(dag_run) -> dict[str, str]:
    return {ti.rendered_map_index: ti.state for ti in dag_run.get_task_instances() if ti.task_id == "summarize"}


def state_of(dag_run, task_id: str) -> str:
    return next(ti.state for ti in dag_run.get_task_instances() if ti.task_id == task_id)


def touch(path: Path, moment: datetime) -> None:
    os.utime(path, (moment.timestamp(), moment.timestamp()))


@pytest.fixture
def summarizer(repo: Path, tmp_path: Path, monkeypatch, airflow_db, embedded_ollama):
    """summarizer-agent (fake model) in the local agent registry; its model built in the embedded Ollama."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AISTACK_SUMMARIZATION_RETRIES", "0")  # a failure shows at once
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "aistack-home"))
    monkeypatch.setenv("AISTACK_AGENT_TOKEN", "batch-summarization-test-token")
    monkeypatch.setenv("AISTACK_SUMMARIZATION_OLLAMA_HOST", embedded_ollama)
    monkeypatch.setenv("AISTACK_SUMMARIZATION_MAX_CHUNK_TOKENS", "200")
    monkeypatch.setenv("AISTACK_SUMMARIZATION_OVERLAP_TOKENS", "24")
    agent, definition = summarizer_pair(repo, model_name="batch-summarizer-model")
    digest = create_model(embedded_ollama, definition)
    fake = ExtractiveFakeModel()
    with serve_agents([(agent, definition)], backends=lambda a, d: fake, registry=True) as [running]:
        yield SimpleNamespace(url=running.url, fake=fake, digest=digest, definition=definition, ollama=embedded_ollama)


@pytest.fixture
def folders(tmp_path: Path, monkeypatch):
    """The examples in an inbox folder, modified inside the run's interval; an output folder."""
    inbox, output = tmp_path / "inbox", tmp_path / "summaries"
    inbox.mkdir()
    for number, name in enumerate(DOCUMENTS):
        (inbox / name).write_bytes((EXAMPLES / name).read_bytes())
        touch(inbox / name, DAY + timedelta(hours=1 + number))
    monkeypatch.setenv("AISTACK_SUMMARIZATION_SOURCE", str(inbox))
    monkeypatch.setenv("AISTACK_SUMMARIZATION_OUTPUT", str(output))
    return SimpleNamespace(inbox=inbox, output=output)


def manifest_of(output: Path, dag_run) -> dict:
    from aistack.documents.manifest import manifest_key

    return json.loads((output / manifest_key(dag_run.run_id)).read_text())


def test_first_run_summarizes_the_intervals_documents_and_writes_the_manifest_fake_model(summarizer, folders):
    (folders.inbox / "yesterday.txt").write_text("Modified the day before the interval.")
    touch(folders.inbox / "yesterday.txt", DAY - timedelta(minutes=1))
    (folders.inbox / "next-day.txt").write_text("Modified when the interval has ended.")
    touch(folders.inbox / "next-day.txt", DAY + timedelta(days=1))
    (folders.inbox / "scan.pdf").write_bytes(b"%PDF-1.7")
    touch(folders.inbox / "scan.pdf", DAY + timedelta(hours=12))

    dag_run = run_dag()

    assert dag_run.state == "success"
    assert summarize_states(dag_run) == {name: "success" for name in DOCUMENTS}, "one mapped task per document"
    manifest = manifest_of(folders.output, dag_run)
    assert manifest["window"] == {"since": DAY.isoformat(), "until": (DAY + timedelta(days=1)).isoformat()}
    assert [d["key"] for d in manifest["documents"]] == DOCUMENTS
    assert manifest["counts"] == {"documents": len(DOCUMENTS), "summarized": len(DOCUMENTS), "skipped": 0, "failed": 0, "ignored": 1}
    assert manifest["ignored"][0]["key"] == "scan.pdf"
    assert (manifest["model"], manifest["modelDigest"], manifest["modelDigestSource"]) == ("batch-summarizer-model:1.0.0", summarizer.digest, "ollama")
    assert manifest["agent"] == {"name": "summarizer-agent", "namespace": "default", "url": summarizer.url}
    assert manifest["recipe"]["maxChunkTokens"] == 200 and manifest["recipe"]["overlapTokens"] == 24
    calls = 0
    for entry in manifest["documents"]:
        record = json.loads(Path(entry["outputs"]["json"]).read_text())
        assert record["contentSha256"] == entry["contentSha256"] == hashlib.sha256((folders.inbox / entry["key"]).read_bytes()).hexdigest()
        assert entry["outputs"]["json"].startswith(str(folders.output / "summaries" / entry["key"]))
        assert f"{entry['contentSha256'][:16]}-{summarizer.digest[:12]}-{manifest['recipe']['fingerprint']}.json" in (entry["outputs"]["json"])
        assert Path(entry["outputs"]["markdown"]).read_text().startswith(f"# Summary: {entry['key']}\n")
        calls += entry["modelCalls"]
    handbook = next(e for e in manifest["documents"] if e["key"] == "community-garden-handbook.txt")
    assert handbook["chunks"] > 1 and handbook["modelCalls"] > handbook["chunks"], "map, then reduce"
    assert calls == len(summarizer.fake.prompts), "every call reached the agent's model"
    gettysburg = json.loads(Path(next(e for e in manifest["documents"] if e["key"] == "gettysburg-address.txt")["outputs"]["json"]).read_text())
    assert "Address Delivered at the Dedication of the Cemetery at Gettysburg" in gettysburg["summary"]
    assert not any(name in p for p in summarizer.fake.prompts for name in ("yesterday", "next-day", "PDF"))


def test_reruns_skip_and_changes_of_document_or_model_summarize_again_fake_model(summarizer, folders):
    first = run_dag()
    assert first.state == "success"
    calls = len(summarizer.fake.prompts)

    rerun = run_dag()
    assert rerun.state == "success"
    manifest = manifest_of(folders.output, rerun)
    assert manifest["skipped"] == DOCUMENTS and manifest["summarized"] == [] and manifest["counts"]["failed"] == 0
    assert len(summarizer.fake.prompts) == calls, "nothing was sent to the agent"
    assert manifest["documents"] == [
        {**entry, "status": "skipped"}
        for entry in [{k: v for k, v in e.items() if k not in ("chunks", "modelCalls")} for e in manifest_of(folders.output, first)["documents"]]
    ], "same hashes, same outputs"

    changed = folders.inbox / "field-report.html"
    changed.write_text(changed.read_text().replace("five people", "four people"))
    touch(changed, DAY + timedelta(hours=20))
    after_change = manifest_of(folders.output, run_dag())
    assert after_change["summarized"] == ["field-report.html"]
    assert after_change["skipped"] == [name for name in DOCUMENTS if name != "field-report.html"]
    versions = sorted((folders.output / "summaries" / "field-report.html").glob("*.json"))
    assert len(versions) == 2, "the new summary sits beside the old one"

    rebuilt = create_model(
        summarizer.ollama, summarizer_pair(Path(__file__).resolve().parents[2], model_name="batch-summarizer-model", system="Summarize tersely.")[1]
    )
    assert rebuilt != summarizer.digest
    after_rebuild = manifest_of(folders.output, run_dag())
    assert after_rebuild["modelDigest"] == rebuilt and after_rebuild["summarized"] == DOCUMENTS, "a new model redoes all"


def test_manual_runs_choose_their_window_fake_model(summarizer, folders):
    later = DAY + timedelta(days=5)
    empty = run_dag(later)
    assert empty.state == "success" and summarize_states(empty) == {None: "skipped"}, "nothing to map over"
    manifest = manifest_of(folders.output, empty)
    assert manifest["counts"]["documents"] == 0 and manifest["documents"] == []

    window = run_dag(later, since=DAY.isoformat(), until=(DAY + timedelta(hours=3)).isoformat())
    assert manifest_of(folders.output, window)["summarized"] == DOCUMENTS[:2], "modified at DAY + 1h and + 2h"

    sweep = manifest_of(folders.output, run_dag(later, all_documents=True))
    assert sweep["window"] == {"since": None, "until": None}
    assert sweep["skipped"] == DOCUMENTS[:2] and sweep["summarized"] == DOCUMENTS[2:]


def test_a_bad_document_fails_only_its_own_task_fake_model(summarizer, folders):
    (folders.inbox / "broken.txt").write_bytes(b"Caf\xe9 menu, saved as Latin-1.\n")
    (folders.inbox / "empty.md").write_text("<!-- nothing but a comment -->\n\n---\n")
    for name in ("broken.txt", "empty.md"):
        touch(folders.inbox / name, DAY + timedelta(hours=22))

    dag_run = run_dag()

    assert dag_run.state == "failed", "the run shows that documents failed"
    states = summarize_states(dag_run)
    assert states == {**{name: "success" for name in DOCUMENTS}, "broken.txt": "failed", "empty.md": "failed"}
    assert state_of(dag_run, "write_manifest") == "success" and state_of(dag_run, "report") == "failed"
    manifest = manifest_of(folders.output, dag_run)
    assert manifest["summarized"] == DOCUMENTS
    failures = {f["key"]: f["error"] for f in manifest["failures"]}
    assert failures.keys() == {"broken.txt", "empty.md"}
    assert "not UTF-8 text: byte 0xe9 at offset 3" in failures["broken.txt"]
    assert "empty after cleaning" in failures["empty.md"]
    broken = next(e for e in manifest["documents"] if e["key"] == "broken.txt")
    assert broken["status"] == "failed" and broken["contentSha256"]
    assert not (folders.output / "summaries" / "broken.txt").exists()


@pytest.fixture
def s3(summarizer, monkeypatch):
    """A moto S3 server; the DAG reaches it through an Airflow connection given by environment variable."""
    with moto_s3() as endpoint:
        connection = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        monkeypatch.setenv("AIRFLOW_CONN_SUMMARIES_S3", json.dumps(connection))
        monkeypatch.setenv("AISTACK_SUMMARIZATION_AWS_CONN_ID", "summaries_s3")
        # the output lies inside the source prefix: the DAG must not take its own outputs for documents
        monkeypatch.setenv("AISTACK_SUMMARIZATION_SOURCE", f"s3://{BUCKET}/docs")
        monkeypatch.setenv("AISTACK_SUMMARIZATION_OUTPUT", f"s3://{BUCKET}/docs/summarized")
        client = s3_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_s3_source_and_output_through_an_airflow_connection_fake_model(summarizer, s3):
    names = ["gettysburg-address.txt", "release-notes.md"]
    for name in names:
        s3.put_object(Bucket=BUCKET, Key=f"docs/{name}", Body=(EXAMPLES / name).read_bytes())
    modified = s3.head_object(Bucket=BUCKET, Key="docs/release-notes.md")["LastModified"]
    day = datetime(modified.year, modified.month, modified.day, tzinfo=UTC)  # the interval holding LastModified

    dag_run = run_dag(day)

    assert dag_run.state == "success"
    assert summarize_states(dag_run) == {name: "success" for name in names}
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="docs/summarized/")["Contents"]}
    manifest_key = next(k for k in keys if k.startswith("docs/summarized/manifests/"))
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert manifest["summarized"] == names and manifest["source"] == f"s3://{BUCKET}/docs"
    for entry in manifest["documents"]:
        for uri in entry["outputs"].values():
            assert uri.startswith(f"s3://{BUCKET}/docs/summarized/summaries/{entry['key']}/")
            assert uri.removeprefix(f"s3://{BUCKET}/") in keys
        record = json.loads(s3.get_object(Bucket=BUCKET, Key=entry["outputs"]["json"].removeprefix(f"s3://{BUCKET}/"))["Body"].read())
        assert record["source"] == f"s3://{BUCKET}/docs/{entry['key']}" and record["modelDigest"] == summarizer.digest
    assert first_sentence("Harbor Lights is the scheduling service") in "".join(summarizer.fake.prompts)

    calls = len(summarizer.fake.prompts)
    rerun = run_dag(day)
    assert rerun.state == "success"
    assert summarize_states(rerun) == {name: "success" for name in names}, "outputs written in the interval are not documents"
    manifests = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="docs/summarized/manifests/")["Contents"]]
    latest = json.loads(s3.get_object(Bucket=BUCKET, Key=next(k for k in manifests if k != manifest_key))["Body"].read())
    assert latest["skipped"] == names and len(summarizer.fake.prompts) == calls


@pytest.mark.timeout(240)
def test_one_short_document_through_the_real_embedded_model_real_model(repo: Path, tmp_path: Path, monkeypatch, airflow_db, embedded_ollama):
    """SmolLM2-135M behind the seed's summarizer-agent (default Ollama backend), one short document.

    The model definition is the seed's summarizer with numPredict 48 and temperature 0, so the
    answer stays short; the document is one paragraph (one chunk, one model call). The agent
    answers in text: constrained to the summarizer's JSON schema, SmolLM2-135M answers
    `{"main_points": []}`, an empty summary (which the DAG rightly treats as a failure)."""
    import ollama

    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AISTACK_SUMMARIZATION_RETRIES", "0")  # a failure shows at once
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "aistack-home"))
    monkeypatch.setenv("AISTACK_AGENT_TOKEN", "batch-summarization-test-token")
    monkeypatch.setenv("AISTACK_SUMMARIZATION_OLLAMA_HOST", embedded_ollama)
    inbox, output = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    document = inbox / "gettysburg-opening.txt"
    document.write_text(
        "Four score and seven years ago our fathers brought forth on this continent, a new nation, "
        "conceived in Liberty, and dedicated to the proposition that all men are created equal.\n"
    )
    touch(document, DAY + timedelta(hours=9))
    monkeypatch.setenv("AISTACK_SUMMARIZATION_SOURCE", str(inbox))
    monkeypatch.setenv("AISTACK_SUMMARIZATION_OUTPUT", str(output))
    agent, definition = summarizer_pair(
        repo, model_name="batch-summarizer-real", response_format="text", parameters={"numPredict": 48, "temperature": 0.0, "seed": 7}
    )
    digest = create_model(embedded_ollama, definition)

    with serve_agents([(agent, definition)], ollama_host=embedded_ollama, registry=True):
        dag_run = run_dag()

    assert dag_run.state == "success"
    manifest = manifest_of(output, dag_run)
    assert manifest["summarized"] == ["gettysburg-opening.txt"]
    assert manifest["modelDigest"] == digest == next(m.digest for m in ollama.Client(host=embedded_ollama).list().models if m.model == "batch-summarizer-real:1.0.0")
    entry = manifest["documents"][0]
    assert entry["chunks"] == 1 and entry["modelCalls"] == 1
    record = json.loads(Path(entry["outputs"]["json"]).read_text())
    assert record["summary"].strip(), "the model wrote something"
    assert Path(entry["outputs"]["markdown"]).read_text().startswith("# Summary: gettysburg-opening.txt")
