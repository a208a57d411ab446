"""A real LLM server on 127.0.0.1 that speaks the OpenAI and Ollama wire formats, with faults.

    with FakeLLMServer() as server:
        server.script(Fault("status", status=500), Fault("ok"))   # per request, in order
        server.default = Fault("ok", text="4")                     # when the script is empty
        client = OpenAIClient(server.base_url, model="m")          # server.base_url = url + "/v1"

Endpoints: ``POST /v1/chat/completions`` (JSON, or SSE with ``"stream": true``),
``GET /v1/models``, ``POST /api/chat`` and ``POST /api/generate`` (JSON, or NDJSON unless
``"stream": false``; Ollama streams by default), ``GET /api/tags``, ``GET /api/health``
(500 while ``server.healthy`` is False), ``GET /health``.

Fault kinds: ``ok``, ``content`` (``text=``), ``status`` (``status=``, ``retry_after=``),
``reset`` (connection reset before any byte), ``slow_first_token`` (``delay=`` seconds before
the first token or the JSON answer), ``stall`` (``after=`` chunks, then ``delay=`` seconds),
``empty``, ``length`` (finish_reason "length"), ``refusal``, ``invalid_json``,
``bad_tool_args``, ``tool_call`` (``tool_args=``), ``repeat`` (a looping answer). ``logprob=``
adds token logprobs (OpenAI) to any kind. Every request is logged in ``server.requests`` as
``(path, json_body)``; ``server.last_headers`` holds the last POST's headers (lower-case).
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REFUSAL = "I'm sorry, but I can't help with that request."


@dataclass
class Fault:
    kind: str = "ok"
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    after: int = 1
    text: str = "The answer is 4"
    tool_args: str = '{"city": "Paris"}'
    logprob: float | None = None

    def content(self) -> str:
        return {
            "empty": "",
            "refusal": REFUSAL,
            "invalid_json": '{"answer": 4',
            "repeat": "again and " * 40,
            "bad_tool_args": "",
            "tool_call": "",
        }.get(self.kind, self.text)

    def finish_reason(self) -> str:
        if self.kind == "length":
            return "length"
        if self.kind in ("bad_tool_args", "tool_call"):
            return "tool_calls"
        return "stop"


KINDS = frozenset(
    {
        "ok",
        "content",
        "status",
        "reset",
        "slow_first_token",
        "stall",
        "empty",
        "length",
        "refusal",
        "invalid_json",
        "bad_tool_args",
        "tool_call",
        "repeat",
    }
)


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)] if text else []


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and clients that give up mid-stream are the point of this server


class FakeLLMServer:
    def __init__(self, model: str = "fake-model") -> None:
        self.model = model
        self.default = Fault()
        self.healthy = True
        self.requests: list[tuple[str, Any]] = []
        self.last_headers: dict[str, str] = {}
        self._script: collections.deque[Fault] = collections.deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def script(self, *faults: Fault) -> None:
        for f in faults:
            if f.kind not in KINDS:
                raise ValueError(f"unknown fault kind {f.kind!r}; known: {sorted(KINDS)}")
        with self._lock:
            self._script.extend(faults)

    def next_fault(self) -> Fault:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def start(self) -> FakeLLMServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ wire formats

    def _openai_json(self, fault: Fault) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": fault.content()}
        if fault.kind in ("bad_tool_args", "tool_call"):
            args = "{city: Paris" if fault.kind == "bad_tool_args" else fault.tool_args
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": args},
                }
            ]
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "finish_reason": fault.finish_reason(),
        }
        if fault.logprob is not None:
            choice["logprobs"] = {
                "content": [
                    {"token": p, "logprob": fault.logprob, "bytes": None, "top_logprobs": []}
                    for p in _pieces(fault.content())
                ]
            }
        n = len(_pieces(fault.content()))
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice],
            "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n},
        }

    def _openai_chunks(self, fault: Fault) -> list[dict[str, Any]]:
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": self.model}
        chunks: list[dict[str, Any]] = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
        ]
        if fault.kind in ("bad_tool_args", "tool_call"):
            args = "{city: Paris" if fault.kind == "bad_tool_args" else fault.tool_args
            half = len(args) // 2
            for i, part in enumerate((args[:half], args[half:])):
                call: dict[str, Any] = {"index": 0, "function": {"arguments": part}}
                if i == 0:
                    call.update(id="call_1", type="function")
                    call["function"]["name"] = "get_weather"
                chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
        for piece in _pieces(fault.content()):
            choice: dict[str, Any] = {"index": 0, "delta": {"content": piece}}
            if fault.logprob is not None:
                choice["logprobs"] = {"content": [{"token": piece, "logprob": fault.logprob}]}
            chunks.append({**base, "choices": [choice]})
        n = len(_pieces(fault.content()))
        chunks.append(
            {
                **base,
                "choices": [{"index": 0, "delta": {}, "finish_reason": fault.finish_reason()}],
                "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n},
            }
        )
        return chunks

    def _ollama_lines(self, fault: Fault, api: str) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for piece in _pieces(fault.content()):
            if api == "chat":
                lines.append(
                    {
                        "model": self.model,
                        "message": {"role": "assistant", "content": piece},
                        "done": False,
                    }
                )
            else:
                lines.append({"model": self.model, "response": piece, "done": False})
        final: dict[str, Any] = {
            "model": self.model,
            "done": True,
            "done_reason": "length" if fault.kind == "length" else "stop",
            "prompt_eval_count": 5,
            "eval_count": len(lines),
        }
        if api == "chat":
            final["message"] = {"role": "assistant", "content": ""}
            if fault.kind in ("bad_tool_args", "tool_call"):
                args = "{city: Paris" if fault.kind == "bad_tool_args" else fault.tool_args
                # Ollama sends arguments as an object; a bad one can only be a string
                try:
                    parsed: Any = json.loads(args)
                except ValueError:
                    parsed = args
                final["message"]["tool_calls"] = [
                    {"function": {"name": "get_weather", "arguments": parsed}}
                ]
        else:
            final["response"] = ""
        return [*lines, final]

    @staticmethod
    def _ollama_json(lines: list[dict[str, Any]], api: str) -> dict[str, Any]:
        final = dict(lines[-1])
        text = "".join(
            (x["message"]["content"] if api == "chat" else x["response"]) for x in lines[:-1]
        )
        if api == "chat":
            final["message"] = {**final["message"], "content": text}
        else:
            final["response"] = text
        return final

    # ------------------------------------------------------------------ HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms Nagle / delayed-ACK stalls on loopback

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _reset(self) -> None:
                # SO_LINGER 0: close() sends an RST, the client sees "connection reset"
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True

            def _stream(self, ctype: str, frames: list[bytes], fault: Fault) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                try:
                    for i, frame in enumerate(frames):
                        if i == 0 and fault.kind == "slow_first_token":
                            time.sleep(fault.delay)
                        if fault.kind == "stall" and i == fault.after:
                            time.sleep(fault.delay)
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:  # the client gave up (its timeout) mid-stream
                    self.close_connection = True

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.requests.append((path, None))
                if path in ("/api/health", "/health", "/api/tags", "/v1/models"):
                    if not server.healthy:
                        self._json(500, {"error": "unhealthy"})
                    elif path == "/api/tags":
                        self._json(200, {"models": [{"name": server.model}]})
                    elif path == "/v1/models":
                        self._json(200, {"object": "list", "data": [{"id": server.model}]})
                    else:
                        self._json(200, {"status": "ok"})
                    return
                self._json(404, {"error": f"no route {path}"})

            def do_POST(self) -> None:
                path = self.path.split("?")[0]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._json(400, {"error": {"message": "invalid JSON body"}})
                    return
                server.requests.append((path, body))
                server.last_headers = {k.lower(): v for k, v in self.headers.items()}
                fault = server.next_fault()
                if fault.kind == "reset":
                    self._reset()
                    return
                if fault.kind == "status":
                    headers = {}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = f"{fault.retry_after:g}"
                    self._json(
                        fault.status,
                        {"error": {"message": f"injected {fault.status}", "type": "server_error"}},
                        headers,
                    )
                    return
                if path.endswith("/chat/completions"):
                    if body.get("stream"):
                        frames = [
                            b"data: " + json.dumps(c).encode() + b"\n\n"
                            for c in server._openai_chunks(fault)
                        ]
                        frames.append(b"data: [DONE]\n\n")
                        self._stream("text/event-stream", frames, fault)
                    else:
                        if fault.kind == "slow_first_token":
                            time.sleep(fault.delay)
                        self._json(200, server._openai_json(fault))
                    return
                if path in ("/api/chat", "/api/generate"):
                    api = path.rsplit("/", 1)[1]
                    lines = server._ollama_lines(fault, api)
                    if body.get("stream", True):
                        frames = [json.dumps(x).encode() + b"\n" for x in lines]
                        self._stream("application/x-ndjson", frames, fault)
                    else:
                        if fault.kind == "slow_first_token":
                            time.sleep(fault.delay)
                        self._json(200, server._ollama_json(lines, api))
                    return
                self._json(404, {"error": f"no route {path}"})

        return Handler


@contextlib.contextmanager
def fake_llm_server(model: str = "fake-model") -> Any:
    """``with fake_llm_server() as server:`` — a started :class:`FakeLLMServer`."""
    server = FakeLLMServer(model)
    with server:
        yield server
