"""The fields of forEach, schedule, cache, review and inputRequired: each mistake is reported at its
field with what to do, and the valid forms parse to what the plan needs."""

import pytest

from aistack.pipelines.plan import plan
from aistack.resources import InvalidResource, parse_resource

JSON_LIST = {"name": "list", "type": "application/json"}


def _resource(spec: dict, namespace: str = "team-a") -> dict:
    return {
        "apiVersion": "ai.stack/v1alpha1",
        "kind": "TaskOrchestration",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {"input": {"text": "x"}, **spec},
    }


def _errors(spec: dict) -> list[str]:
    with pytest.raises(InvalidResource) as caught:
        parse_resource(_resource(spec))
    return [str(e) for e in caught.value.errors]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"pipeline": [{"name": "a", "agentRef": "x", "forEach": {}}]},
            "spec.pipeline[0].forEach: set exactly one of fromInput, fromArtifact and fromStorage (given: none)",
        ),
        (
            {"pipeline": [{"name": "a", "agentRef": "x", "forEach": {"fromInput": {}, "fromStorage": {"type": "local"}}}]},
            "spec.pipeline[0].forEach: set exactly one of fromInput, fromArtifact and fromStorage (given: fromInput, fromStorage)",
        ),
        (
            {"pipeline": [{"name": "a", "agentRef": "x", "forEach": {"fromArtifact": {"taskRef": "nope", "artifactName": "b"}}}]},
            'spec.pipeline[0].forEach.fromArtifact.taskRef: unknown step "nope"',
        ),
        (
            {
                "pipeline": [
                    {"name": "a", "agentRef": "x", "artifacts": [JSON_LIST]},
                    {"name": "b", "agentRef": "x", "forEach": {"fromArtifact": {"taskRef": "a", "artifactName": "list"}}},
                ]
            },
            'spec.pipeline[1].forEach.fromArtifact.taskRef: step "a" does not run before "b": add it to dependsOn',
        ),
        (
            {
                "pipeline": [
                    {"name": "a", "agentRef": "x"},
                    {"name": "b", "agentRef": "x", "dependsOn": ["a"], "forEach": {"fromArtifact": {"taskRef": "a", "artifactName": "list"}}},
                ]
            },
            'spec.pipeline[1].forEach.fromArtifact.artifactName: step "a" declares no artifact "list"; it declares: none',
        ),
        (
            {
                "pipeline": [
                    {"name": "a", "agentRef": "x", "artifacts": [JSON_LIST]},
                    {"name": "b", "agentRef": "x", "dependsOn": ["a"], "forEach": {"fromArtifact": {"taskRef": "a", "artifactName": "list", "path": "a..b"}}},
                ]
            },
            "spec.pipeline[1].forEach.fromArtifact.path: invalid path 'a..b'",
        ),
        (
            {"pipeline": [{"name": "a", "agentRef": "x", "forEach": {"fromInput": {"split": "separator"}}}]},
            "spec.pipeline[0].forEach.fromInput: separator is required when split is separator",
        ),
        (
            {"pipeline": [{"name": "a", "agentRef": "x", "forEach": {"fromStorage": {"type": "s3"}}}]},
            "spec.pipeline[0].forEach.fromStorage: bucket is required when type is s3",
        ),
        (
            {"pipeline": [{"name": "a", "agentRef": "x", "forEach": {"fromStorage": {"type": "local", "prefix": "../b"}}}]},
            "spec.pipeline[0].forEach.fromStorage.prefix: invalid '../b'",
        ),
        ({"pipeline": [{"name": "a", "agentRef": "x", "forEach": {"fromInput": {}, "maxParallel": 0}}]}, "spec.pipeline[0].forEach.maxParallel"),
        (
            {"pipeline": [{"name": "a", "agentRef": "x", "forEach": {"fromInput": {}}, "review": {}}]},
            "spec.pipeline[0].review: a forEach step cannot be reviewed item by item",
        ),
        ({"pipeline": [{"name": "a", "agentRef": "x", "cache": {"ttl": "10s"}}]}, "spec.pipeline[0].cache: ttl must be between 1m and 8760h"),
        ({"pipeline": [{"name": "a", "agentRef": "x", "review": {"timeout": "1s"}}]}, "spec.pipeline[0].review: timeout must be between 1m and 720h"),
        ({"pipeline": [{"name": "a", "agentRef": "x", "review": {"onTimeout": "maybe"}}]}, "spec.pipeline[0].review.onTimeout"),
        ({"pipeline": [{"name": "a", "agentRef": "x", "inputRequired": {"maxRounds": 21}}]}, "spec.pipeline[0].inputRequired.maxRounds"),
        (
            {"schedule": {"cron": "61 * * * *"}, "pipeline": [{"name": "a", "agentRef": "x"}]},
            "spec.schedule.cron: invalid cron expression '61 * * * *': write five fields",
        ),
        ({"schedule": {"cron": "@every"}, "pipeline": [{"name": "a", "agentRef": "x"}]}, "spec.schedule.cron: unknown preset '@every'"),
        ({"schedule": {}, "pipeline": [{"name": "a", "agentRef": "x"}]}, "spec.schedule: set exactly one of cron and assets"),
        ({"schedule": {"assets": ["http://example.invalid/x"]}, "pipeline": [{"name": "a", "agentRef": "x"}]}, "spec.schedule.assets[0]"),
        (
            {"schedule": {"assets": ["aistack://taskorchestrations/team-b/q"]}, "pipeline": [{"name": "a", "agentRef": "x"}]},
            "spec.schedule.assets[0]: aistack://taskorchestrations/team-b/q belongs to namespace 'team-b'",
        ),
        (
            {"schedule": {"assets": ["aistack://taskorchestrations/team-a/p"]}, "pipeline": [{"name": "a", "agentRef": "x"}]},
            "a pipeline cannot be scheduled on its own results",
        ),
    ],
)
def test_each_mistake_is_reported_at_its_field(spec: dict, expected: str):
    errors = _errors(spec)
    assert any(expected in error for error in errors), errors


def test_the_valid_forms_reach_the_plan():
    resource = parse_resource(
        _resource(
            {
                "schedule": {"assets": ["s3://docs-bucket/incoming/ready.txt", "aistack://taskorchestrations/team-a/upstream"]},
                "pipeline": [
                    {"name": "a", "agentRef": "x", "artifacts": [JSON_LIST], "cache": {"ttl": "2h"}, "review": {"allowEdit": True, "onTimeout": "approve"}},
                    {
                        "name": "b",
                        "agentRef": "x",
                        "dependsOn": ["a"],
                        "forEach": {"fromArtifact": {"taskRef": "a", "artifactName": "list", "path": "x.y[0]"}, "maxParallel": 8},
                    },
                    {"name": "c", "agentRef": "x", "dependsOn": ["b"], "inputRequired": {"maxRounds": 0}},
                ],
            }
        )
    )
    p = plan(resource)
    a, b, c = p.steps
    assert (a.cache_ttl.total_seconds(), a.review_task_id, a.results_task_id, a.items_task_id) == (7200, "a__review", "a__review", None)
    assert (b.items_task_id, b.for_each.max_parallel, b.takes_upstream_results) == ("b__items", 8, False)
    assert (c.input_rounds, c.results_task_id) == (0, "c")
    assert p.schedule.assets == ["s3://docs-bucket/incoming/ready.txt", "aistack://taskorchestrations/team-a/upstream"]
