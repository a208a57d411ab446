"""Bad input to every endpoint: an OpenAI-shaped 4xx naming the problem, never a 500."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.integration.gateway.conftest import chain_config
from tests.support.fake_llm import FakeLLMServer

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
M = [{"role": "user", "content": "hi"}]

CASES = [
    # (method, path, raw body or json, status, param)
    ("POST", CHAT, b"", 400, None),
    ("POST", CHAT, b"{not json", 400, None),
    ("POST", CHAT, b"\xff\xfe", 400, None),
    ("POST", CHAT, b"[1, 2]", 400, None),
    ("POST", CHAT, b'{"messages": [{"role": "user", "content": NaN}]}', 400, None),
    ("POST", CHAT, b'{"messages": [{"role": "user", "content": "\\ud800"}]}', 400, None),
    ("POST", CHAT, b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, None),
    ("POST", CHAT, {"messages": []}, 400, "messages"),
    ("POST", CHAT, {"messages": "hi"}, 400, "messages"),
    ("POST", CHAT, {"messages": [1]}, 400, "messages[0]"),
    ("POST", CHAT, {"messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role"),
    ("POST", CHAT, {"messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
    ("POST", CHAT, {"messages": M, "model": 7}, 400, "model"),
    ("POST", CHAT, {"messages": M, "stream": "yes"}, 400, "stream"),
    ("POST", CHAT, {"messages": M, "temperature": 1e308}, 400, "temperature"),
    ("POST", CHAT, {"messages": M, "max_tokens": -1}, 400, "max_tokens"),
    ("POST", CHAT, {"messages": M, "response_format": {"type": "xml"}}, 400, "response_format"),
    ("POST", CHAT, {"messages": M, "tools": "all"}, 400, "tools"),
    ("POST", CHAT, {"messages": M, "model": "unrouted"}, 404, "model"),
    ("GET", CHAT, None, 405, None),
    ("POST", "/v1/embeddings", {"input": 5}, 400, "input"),
    ("POST", "/v1/embeddings", b"nope", 400, None),
    ("POST", "/v1/models", {}, 405, None),
    ("GET", "/v1/nothing", None, 404, None),
    ("DELETE", "/circuit-breakers", None, 405, None),
    ("GET", "/circuit-breakers/unknown", None, 404, None),
    ("POST", "/circuit-breakers/max_gpu", b"{", 400, None),
    ("POST", "/metrics", None, 405, None),
    ("POST", "/health/ready", None, 405, None),
]


def test_every_endpoint_rejects_bad_input_with_a_4xx(primary, secondary, gateway) -> None:
    extra = "  only:\n    chain: [max_gpu]\n"
    cfg = chain_config(primary, secondary, extra_routes=extra).replace(
        '  "*":\n    chain: [max_gpu, ollama_cpu, cache, degraded]\n', ""
    )
    g = gateway(cfg)
    headers = {"Authorization": "Bearer test-admin-key", "Content-Type": "application/json"}
    for method, path, body, status, param in CASES:
        content = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        r = httpx.request(method, g.url + path, content=content, headers=headers, timeout=10)
        assert r.status_code == status, (method, path, body, r.text)
        err = r.json()["error"]
        assert err["message"] and err["type"], (path, body)
        assert err["param"] == param, (path, body, err)
    assert len(primary.requests) == 0  # nothing invalid reached a backend
    big = b'{"messages": [{"role": "user", "content": "' + b"x" * (9 * 1024 * 1024) + b'"}]}'
    r = httpx.post(g.url + CHAT, content=big, headers=headers, timeout=30)
    assert r.status_code == 413


class _Embeddings(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = json.dumps(
            {
                "object": "list",
                "model": body["model"],
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def embeddings_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_embeddings_pass_through_to_the_first_openai_backend(
    embeddings_server, secondary: FakeLLMServer, gateway
) -> None:
    import openai

    cfg = f"""
backends:
  down: {{type: openai, url: "http://127.0.0.1:1/v1", timeout: 1}}
  emb: {{type: openai, url: "{embeddings_server}", model: "text-embed"}}
routes:
  "*": {{chain: [down, emb]}}
"""
    g = gateway(cfg)
    client = openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0)
    raw = client.embeddings.with_raw_response.create(model="anything", input="hello")
    result = raw.parse()
    assert result.data[0].embedding == [0.1, 0.2]
    assert result.model == "text-embed"
    assert raw.headers["x-tripwise-backend"] == "emb"
    assert raw.headers["x-tripwise-fallback-reason"] == "down=error:connect"
