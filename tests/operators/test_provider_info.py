"""aistack registers itself as an Airflow provider: the a2a connection type and the agent-card link."""

import subprocess
import sys
from pathlib import Path


def test_a2a_connection_type_is_known_to_airflow():
    airflow = Path(sys.executable).parent / "airflow"
    listed = subprocess.run([str(airflow), "providers", "hooks"], capture_output=True, text=True, timeout=120, check=True).stdout
    line = next(line for line in listed.splitlines() if line.startswith("a2a "))
    assert "aistack_airflow.hooks.a2a.A2AHook" in line and "A2A agent" in line


def test_hook_reads_url_and_token_from_the_connection(monkeypatch):
    from aistack_airflow.hooks.a2a import A2AHook

    monkeypatch.setenv("AIRFLOW_CONN_SUMMARIZER", "a2a://:s3cret@summarizer.default.svc:8000")
    monkeypatch.setenv("AIRFLOW_CONN_FULL", '{"conn_type": "a2a", "host": "https://agents.example.com/api/v1/agent/", "password": "t"}')
    assert A2AHook(a2a_conn_id="summarizer").endpoint() == ("http://summarizer.default.svc:8000", "s3cret")
    assert A2AHook(a2a_conn_id="full").endpoint() == ("https://agents.example.com/api/v1/agent", "t")
    assert A2AHook(agent_url="http://127.0.0.1:9000/").endpoint() == ("http://127.0.0.1:9000", None)
