"""A fast OpenAI-compatible server for the HTTP / LLM benchmarks (asyncio, keep-alive).

``python bench/_fast_llm_server.py PORT``: ``POST .../chat/completions`` answers a fixed
completion; any path under ``/fail/`` answers 500. Prints ``ready`` when listening.
"""

from __future__ import annotations

import asyncio
import json
import sys

BODY = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The answer is 4"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
    }
).encode()
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)
FAIL_BODY = b'{"error": {"message": "down"}}'
FAIL = b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n" + (
    b"content-length: %d\r\n\r\n%s" % (len(FAIL_BODY), FAIL_BODY)
)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            path = head.split(b" ", 2)[1]
            writer.write(FAIL if path.startswith(b"/fail/") else OK)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
