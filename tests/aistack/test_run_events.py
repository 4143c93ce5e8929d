"""A run's event webhook that the guard refuses is said once, not once per event (the seed's
`http://callback-service/webhook` cannot be resolved outside its cluster)."""

import logging

from aistack.pipelines import status
from aistack.pipelines.status import RunReporter


def test_a_refused_event_endpoint_is_reported_once_per_run(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("AISTACK_ORCHESTRATIONS_PATH", str(tmp_path))  # no cluster: nothing but the events
    monkeypatch.delenv("AISTACK_WEBHOOK_ALLOW", raising=False)
    monkeypatch.setattr(status, "_REFUSED", set())
    endpoint = "http://127.0.0.1:9/events"  # loopback: the guard refuses it before anything is sent
    report = RunReporter("default", "p", "aistack__default__p", "run-1", 2, endpoint)
    with caplog.at_level(logging.WARNING):
        for step in ("a", "b", "c"):
            report.step(step, "Running")
            report.step(step, "Succeeded")
        report.finished("Succeeded", 3, "every step completed")
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 2, refused  # the guard's own line, then what it means for the run
    assert refused[1].startswith(f"events of this run will not be sent to {endpoint}")
