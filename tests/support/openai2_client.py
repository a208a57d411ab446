"""Run by tests/integration/llm/test_openai2_httpx.py with openai 2.x first on sys.path:
the official SDK on httpx (not httpx2) through wrap_openai. Prints one JSON line of results.

Usage: python -m tests.support.openai2_client PRIMARY_BASE_URL FALLBACK_BASE_URL
"""

from __future__ import annotations

import contextlib
import json
import sys

import httpx
import openai

from tripwise import Registry, consecutive_failures
from tripwise.http import wrap_openai

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


def main(primary: str, fallback: str) -> None:
    out: dict[str, object] = {"openai": openai.__version__}
    client = wrap_openai(
        {"base_url": primary, "api_key": "k"}, fallback=[fallback], registry=Registry()
    )
    out["on_httpx"] = isinstance(client._client, httpx.Client)
    out["max_retries"] = client.max_retries
    out["fallback_model"] = client.chat.completions.create(model="m", messages=MESSAGES).model
    closed = wrap_openai(
        {"base_url": primary, "api_key": "k"}, trip_on=consecutive_failures(1), registry=Registry()
    )
    with contextlib.suppress(openai.InternalServerError):  # the failure that opens it
        closed.chat.completions.create(model="m", messages=MESSAGES)
    try:
        closed.chat.completions.create(model="m", messages=MESSAGES)
    except openai.APIStatusError as err:
        out["open_status"] = err.status_code
        out["open_code"] = err.code
        out["should_retry"] = err.response.headers["x-should-retry"]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
