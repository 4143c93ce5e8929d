"""The embedded server's limits, on the real server with the real SmolLM2 model: a template that
would run for days is answered at once while other clients are served, an oversized body gets 413
however it is sent, a prompt no context can hold is refused unread, and a client that goes away
during a long prompt frees the model within one batch."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import ollama
import pytest

from aistack.runtime.config import DEFAULT_MAX_BODY
from aistack.runtime.generation import PROMPT_BYTES_PER_TOKEN

from ..test_gotemplate_limits import doubling
from .support import FAST

pytestmark = pytest.mark.timeout(300)

EXPONENTIAL = doubling(40, "{{ .Prompt }}")  # 2^40 calls; reads only what Ollama sets


def test_an_exponential_template_in_a_request_fails_promptly_while_other_clients_are_served(server):
    body = {"model": "smollm2", "prompt": "Hi", "template": EXPONENTIAL, "stream": False, "options": FAST}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.perf_counter()
        generating = pool.submit(httpx.post, f"{server.url}/api/generate", json=body, timeout=60)
        time.sleep(0.05)
        version = httpx.get(f"{server.url}/api/version", timeout=10)
        assert version.status_code == 200 and time.perf_counter() - started < 3, "the event loop kept serving"
        response = generating.result()
    assert response.status_code == 500
    assert "template rendering exceeded 1000000 steps" in response.json()["error"]
    assert time.perf_counter() - started < 20


def test_a_model_with_an_exponential_template_is_created_at_once_and_its_generate_fails_promptly(client):
    started = time.perf_counter()
    client.create(model="exponential-template", from_="smollm2", template=EXPONENTIAL)
    assert time.perf_counter() - started < 10
    with pytest.raises(ollama.ResponseError) as error:
        client.generate(model="exponential-template", prompt="Hi", options=FAST)
    assert error.value.status_code == 500 and "exceeded 1000000 steps" in error.value.error
    assert time.perf_counter() - started < 20
    client.delete("exponential-template")


def _response(sock: socket.socket) -> tuple[int, dict]:
    """The status and JSON body of the HTTP response read from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), json.loads(body)


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


REQUEST = "POST /api/generate HTTP/1.1\r\nHost: runtime\r\nContent-Type: application/json\r\n"


def test_a_declared_body_over_the_limit_gets_413_before_it_is_sent(server):
    with _connect(server.url) as sock:
        sock.sendall((REQUEST + "Content-Length: 419430400\r\n\r\n").encode())  # 400 MB announced, none sent
        status, body = _response(sock)
    assert status == 413
    assert body == {
        "error": f"the request body is 419430400 bytes; the embedded runtime accepts at most {DEFAULT_MAX_BODY} bytes (set AISTACK_RUNTIME_MAX_BODY to change that)"
    }


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(server):
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))  # 1 MiB of JSON whitespace per chunk
    answered = threading.Event()

    def upload(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the server stops reading, then closes
            for _ in range(DEFAULT_MAX_BODY // (1 << 20) + 8):
                if answered.is_set():
                    return
                sock.sendall(chunk)

    with _connect(server.url) as sock:
        sock.sendall((REQUEST + "Transfer-Encoding: chunked\r\n\r\n").encode())
        sender = threading.Thread(target=upload, args=(sock,))
        sender.start()
        try:
            status, body = _response(sock)
        finally:
            answered.set()
            sender.join(30)
    assert status == 413 and body["error"].startswith(f"the request body is more than {DEFAULT_MAX_BODY} bytes")
    assert httpx.get(f"{server.url}/api/version").status_code == 200


def test_a_prompt_far_longer_than_the_context_is_refused_naming_the_sizes(client):
    text = "word " * 60_000  # 300 kB; a context of 8192 tokens takes 32 bytes per token: 262144
    started = time.perf_counter()
    with pytest.raises(ollama.ResponseError) as error:
        client.generate(model="smollm2", prompt=text, raw=True, options=FAST)
    assert error.value.status_code == 400
    assert error.value.error.startswith(
        f"the prompt is 300000 bytes, far more than the context of 8192 tokens holds: at most {8192 * PROMPT_BYTES_PER_TOKEN} bytes are accepted"
    )
    assert time.perf_counter() - started < 10


@pytest.mark.slow
def test_a_client_leaving_during_a_long_prompt_frees_the_model_within_a_batch(server, client):
    long_prompt = "Count the apples in every basket. " * 350  # about 2500 tokens: five batches of 512
    options = {"temperature": 0, "num_predict": 1}
    full = client.generate(model="smollm2", prompt=long_prompt, raw=True, options=options)
    assert 2000 < full.prompt_eval_count < 4000
    full_seconds = full.prompt_eval_duration / 1e9
    body = {"model": "smollm2", "prompt": long_prompt, "raw": True, "options": options, "stream": True}
    with httpx.stream("POST", f"{server.url}/api/generate", json=body, timeout=60) as response:
        assert response.status_code == 200  # the prompt is tokenized and being evaluated
    # Leaving the block closed the connection: the client went away mid-prompt.
    started = time.perf_counter()
    assert client.generate(model="smollm2", prompt="Hi", options=FAST | {"num_predict": 1}).done
    waited = time.perf_counter() - started
    assert waited < full_seconds / 2, f"waited {waited:.1f}s behind a cancelled prompt that takes {full_seconds:.1f}s"
    assert "prompt evaluation cancelled after" in server.log_path.read_text()
