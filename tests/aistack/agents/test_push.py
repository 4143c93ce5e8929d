"""Push notifications and the webhook module: retries, headers, payloads, the SSRF guard."""

from __future__ import annotations

import json
import random

import httpx
import pytest
from a2a.types import AuthenticationInfo, TaskPushNotificationConfig
from a2a.utils.errors import InvalidParamsError

from aistack.agents.fakes import ScriptedModel
from aistack.agents.webhooks import DELIVERY_ID_HEADER, AllowList, RetrySchedule, UnsafeWebhookURL, WebhookGuard, deliver
from aistack.resources.agent import WebhookConfig

from .support import WebhookReceiver, model_definition, ollama_agent, run, sdk_client, send_request, serve, user_message, wait_until


def push_config(url: str) -> TaskPushNotificationConfig:
    return TaskPushNotificationConfig(url=url, token="notify-token", authentication=AuthenticationInfo(scheme="Bearer", credentials="hook-secret"))


def test_push_delivery_retries_then_succeeds_with_whole_artifacts_of_the_fake_model():
    agent = ollama_agent(push=True, webhook={"retryPolicy": "fixed", "maxRetries": 3})
    with (
        WebhookReceiver(statuses=[500, 500]) as hook,
        serve(
            agent,
            model_definition(),
            ScriptedModel(["alpha beta gamma"]),
            webhook_allow=AllowList.parse("127.0.0.1"),
            webhook_base_delay=0.01,
        ) as running,
    ):

        async def go():
            client = sdk_client(running, "jsonrpc", streaming=False)
            [r] = [r async for r in client.send_message(send_request(user_message("go"), task_push_notification_config=push_config(hook.hook_url)))]
            await client.close()
            return r.task

        task = run(go())
        wait_until(lambda: any(b"TASK_STATE_COMPLETED" in r["body"] for r in hook.delivered()))
        metrics = httpx.get(running.url + "/metrics").text

    requests = hook.requests
    # The first notification failed twice (500) and arrived on the third attempt, with one delivery id.
    assert [r["status"] for r in requests[:3]] == [500, 500, 200]
    assert len({r["headers"][DELIVERY_ID_HEADER.lower()] for r in requests[:3]}) == 1
    bodies = [json.loads(r["body"]) for r in hook.delivered()]
    assert [next(iter(b)) for b in bodies] == ["task", "statusUpdate", "artifactUpdate", "statusUpdate"]
    assert bodies[0]["task"]["id"] == task.id
    assert bodies[1]["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING"
    artifact = bodies[2]["artifactUpdate"]  # whole, though it was streamed as 3 chunks
    assert artifact["lastChunk"] is True and not artifact.get("append")
    assert "".join(p["text"] for p in artifact["artifact"]["parts"]) == "alpha beta gamma"
    assert bodies[3]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert len(requests) == 6
    for r in requests:
        assert r["headers"]["content-type"] == "application/a2a+json"
        assert r["headers"]["authorization"] == "Bearer hook-secret"
        assert r["headers"]["x-a2a-notification-token"] == "notify-token"
    assert 'aistack_a2a_push_deliveries_total{outcome="delivered"} 4.0' in metrics
    assert 'aistack_a2a_push_attempts_total{result="500"} 2.0' in metrics


def test_push_url_on_loopback_is_refused_without_the_allow_list():
    with serve(ollama_agent(push=True), model_definition(), ScriptedModel(), webhook_allow=AllowList()) as running:

        async def go():
            client = sdk_client(running, "jsonrpc", streaming=False)
            with pytest.raises(InvalidParamsError, match="loopback"):
                async for _ in client.send_message(send_request(user_message("go"), task_push_notification_config=push_config("http://127.0.0.1:9/hook"))):
                    pass
            [r] = [r async for r in client.send_message(send_request(user_message("go")))]
            with pytest.raises(InvalidParamsError, match="AISTACK_WEBHOOK_ALLOW"):
                await client.create_task_push_notification_config(TaskPushNotificationConfig(task_id=r.task.id, url="http://169.254.169.254/latest/meta-data"))
            await client.close()

        run(go())


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.1.20/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]:9000/", "loopback"),
        ("http://100.64.0.1/", "not a public address"),
        ("http://0.0.0.0/", "unspecified"),
        ("ftp://example.com/hook", "http or https"),
        ("http://user:pw@example.com/hook", "credentials"),
        ("http://internal.example/hook", "resolves to 10.0.0.5"),
    ],
)
def test_ssrf_guard_refuses_non_public_targets(url, reason):
    async def resolver(host, port):
        return ["10.0.0.5"]

    with pytest.raises(UnsafeWebhookURL, match=reason):
        run(WebhookGuard(AllowList(), resolver=resolver).check(url))


def test_ssrf_guard_allow_list_admits_addresses_networks_and_names():
    async def resolver(host, port):
        return {"localhost": ["127.0.0.1"], "hooks.svc.cluster.local": ["10.96.0.7"]}[host]

    guard = WebhookGuard(AllowList.parse("127.0.0.1, 10.0.0.0/8, *.svc.cluster.local"), resolver=resolver)
    for url in ("http://127.0.0.1:8080/x", "http://10.9.9.9/x", "https://hooks.svc.cluster.local/x", "http://93.184.216.34/x"):
        assert run(guard.check(url)).url == url
    with pytest.raises(UnsafeWebhookURL):
        run(guard.check("http://192.168.0.1/x"))
    named = WebhookGuard(AllowList.parse("localhost"), resolver=resolver)
    target = run(named.check("http://localhost:8080/hook?x=1"))
    assert target.pinned_url() == "http://127.0.0.1:8080/hook?x=1" and target.host_header() == "localhost:8080"
    with pytest.raises(ValueError, match="invalid entry"):
        AllowList.parse("not a host!")


def test_delivery_is_pinned_to_the_checked_address():
    with WebhookReceiver() as hook:

        async def go():
            async with httpx.AsyncClient() as client:
                return await deliver(client, f"http://localhost:{hook.port}/hook", {"x": 1}, guard=WebhookGuard(AllowList.parse("localhost")))

        result = run(go())
    assert result.delivered and result.attempts == 1
    assert hook.requests[0]["headers"]["host"] == f"localhost:{hook.port}"


def test_retry_schedules():
    rng = random.Random(1)
    exponential = RetrySchedule("exponential", 3, base_delay=1.0, jitter=0.5)
    for n, full in ((1, 1), (2, 2), (3, 4)):
        delays = {exponential.delay(n, rng) for _ in range(50)}
        assert all(full * 0.5 <= d <= full for d in delays) and len(delays) > 1  # jittered
    assert RetrySchedule("linear", 3, jitter=0).delay(3) == 3
    assert RetrySchedule("fixed", 3, jitter=0).delay(3) == 1
    assert RetrySchedule("exponential", 10, base_delay=1, max_delay=5, jitter=0).delay(8) == 5
    assert RetrySchedule("none", 5).retries == 0
    from_cr = RetrySchedule.from_webhook_config(WebhookConfig(retry_policy="linear", max_retries=2), base_delay=0.5)
    assert (from_cr.policy, from_cr.retries, from_cr.base_delay) == ("linear", 2, 0.5)
    assert RetrySchedule.from_webhook_config(None).retries == 3


@pytest.mark.parametrize(
    "statuses, policy, attempts, delivered",
    [
        ([503, 503, 503, 503, 503], "fixed", 4, False),  # maxRetries 3: four attempts, then give up
        ([500], "none", 1, False),  # no retries
        ([404], "fixed", 1, False),  # a client error is not retried
        ([429, 200], "fixed", 2, True),
    ],
)
def test_deliver_retries_only_what_can_succeed(statuses, policy, attempts, delivered):
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(statuses[min(len(seen) - 1, len(statuses) - 1)])

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            return await deliver(client, "http://93.184.216.34/hook", b"{}", schedule=RetrySchedule(policy, 3, base_delay=0.001))

    result = run(go())
    assert (result.attempts, result.delivered, len(seen)) == (attempts, delivered, attempts)


def test_deliver_retries_connection_errors_and_never_calls_refused_urls():
    calls = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("connection refused")

    async def go(url):
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
            return await deliver(client, url, b"{}", schedule=RetrySchedule("fixed", 2, base_delay=0.001), guard=WebhookGuard(AllowList()))

    failed = run(go("http://93.184.216.34/hook"))
    assert (failed.attempts, failed.delivered, failed.error) == (3, False, "ConnectError: connection refused")
    refused = run(go("http://127.0.0.1/hook"))
    assert refused.refused and refused.attempts == 0 and len(calls) == 3
