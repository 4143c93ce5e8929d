"""Real Ollama when OLLAMA_HOST answers, the embedded runtime otherwise."""

from __future__ import annotations

import http.server
import json
import socket
import threading

import ollama
import pytest

from aistack.runtime.config import RuntimeConfig
from aistack.runtime.endpoint import choose_endpoint, ollama_endpoint


@pytest.fixture
def fake_ollama():
    """A stand-in for a real Ollama: answers /api/version like one."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"version": "0.12.3"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unset_ollama_host_means_embedded():
    chosen = choose_endpoint({})
    assert (chosen.kind, chosen.url) == ("embedded", None)


def test_answering_ollama_host_is_used(fake_ollama):
    chosen = choose_endpoint({"OLLAMA_HOST": fake_ollama})
    assert chosen.kind == "ollama" and chosen.url == f"http://{fake_ollama}"
    with ollama_endpoint(env={"OLLAMA_HOST": fake_ollama}) as endpoint:
        assert endpoint == chosen


def test_silent_ollama_host_falls_back_to_embedded(caplog):
    chosen = choose_endpoint({"OLLAMA_HOST": f"127.0.0.1:{_closed_port()}"}, timeout=0.5)
    assert (chosen.kind, chosen.url) == ("embedded", None)
    assert "does not answer" in caplog.text


def test_an_aistack_server_behind_ollama_host_is_reported_as_embedded(server):
    assert choose_endpoint({"OLLAMA_HOST": server.url}).kind == "embedded"


def test_ollama_endpoint_starts_and_stops_the_embedded_server(tmp_path):
    with ollama_endpoint(RuntimeConfig(store=tmp_path), env={}) as endpoint:
        assert endpoint.kind == "embedded" and endpoint.url.startswith("http://127.0.0.1:")
        assert ollama.Client(host=endpoint.url).list().models  # the bundled base model
    with pytest.raises(ConnectionError):
        ollama.Client(host=endpoint.url).list()
