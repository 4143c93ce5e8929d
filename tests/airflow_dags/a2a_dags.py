"""DAGs around A2AAgentOperator for tests/operators/test_a2a.py; the agent URL comes from the environment."""

import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from aistack_airflow.operators.a2a import A2AAgentOperator

URL = os.environ.get("AISTACK_TEST_AGENT_URL", "http://127.0.0.1:9/unset")
START = datetime(2026, 1, 1, tzinfo=UTC)
ANSWER = [{"name": "answer", "mediaType": "text/plain"}]

with DAG("test_a2a_send", schedule=None, start_date=START) as send:
    A2AAgentOperator(task_id="answer", agent_url=URL, text="What is A2A?", artifacts=ANSWER)

with DAG("test_a2a_stream", schedule=None, start_date=START) as stream:
    A2AAgentOperator(task_id="answer", agent_url=URL, text="What is A2A?", artifacts=ANSWER, streaming=True)

with DAG("test_a2a_defer", schedule=None, start_date=START) as defer:
    A2AAgentOperator(task_id="answer", agent_url=URL, text="What is A2A?", artifacts=ANSWER, deferrable=True, poll_interval=0.2)

with DAG("test_a2a_timeout", schedule=None, start_date=START) as timeout:
    A2AAgentOperator(task_id="answer", agent_url=URL, text="Take your time.", execution_timeout=timedelta(seconds=2))

with DAG("test_a2a_chain", schedule=None, start_date=START) as chain:
    first = A2AAgentOperator(task_id="first", agent_url=URL, text="Analyze.", artifacts=[{"name": "facts", "mediaType": "application/json"}])
    first >> A2AAgentOperator(task_id="second", agent_url=URL, text="Summarize the facts.", input_from=[("first", "facts")])
