"""A fast local OpenAI-compatible upstream for the gateway benchmarks (plain ASGI on uvicorn).

    python bench/gateway_upstream.py --port 9100

``POST /v1/chat/completions`` answers at once (JSON, or SSE with ``"stream": true``: 8 chunks,
no delay); ``POST /fail/v1/chat/completions`` answers 500 (the first backend of a fallback
hop); ``GET /v1/models`` lists one model. ``GET /stamps`` returns (and forgets) the
``time.perf_counter_ns()`` (CLOCK_MONOTONIC, one clock for every process of the machine) at
which each streamed answer began, for bench/gateway_probe.py's relay measure.
"""

from __future__ import annotations

import argparse
import json
import time

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The answer is 4."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    }
).encode()


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


STREAM = (
    [_chunk({"role": "assistant"})]
    + [_chunk({"content": w}) for w in ["The", " answer", " is", " 4", "."]]
    + [_chunk({}, "stop"), b"data: [DONE]\n\n"]
)
FAILURE = json.dumps({"error": {"message": "injected", "type": "server_error"}}).encode()
STAMPS: list[int] = []
MODELS = json.dumps({"object": "list", "data": [{"id": "bench-model", "object": "model"}]}).encode()


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    path = scope["path"]
    if path == "/stamps":
        status, payload, ctype = 200, json.dumps(STAMPS).encode(), b"application/json"
        STAMPS.clear()
    elif path.startswith("/fail/"):
        status, payload, ctype = 500, FAILURE, b"application/json"
    elif path.endswith("/models"):
        status, payload, ctype = 200, MODELS, b"application/json"
    elif b'"stream":true' in body.replace(b" ", b""):
        STAMPS.append(time.perf_counter_ns())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for piece in STREAM:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    else:
        status, payload, ctype = 200, COMPLETION, b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
