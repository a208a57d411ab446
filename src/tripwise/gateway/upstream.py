"""How the gateway talks to one live backend: OpenAI-compatible (vLLM, MAX, OpenAI) or Ollama.

A proxy forwards requests, so this layer keeps the OpenAI wire shape end to end: a
non-streaming call returns the upstream's ``chat.completion`` object, a stream yields OpenAI
``chat.completion.chunk`` objects (Ollama's NDJSON is translated to them). Every failure is an
:class:`UpstreamError` whose ``reason`` is what the audit header shows (``error:503``,
``error:timeout``, ``error:connect``, ``error:first_byte_timeout``, ``error:stall``...).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, TypeVar

import aiohttp
import yarl

from tripwise.gateway.config import BackendConfig
from tripwise.gateway.jsonio import dumps, loads

T = TypeVar("T")
Batch = list[tuple[dict[str, Any], bytes]]

if sys.version_info >= (3, 11):

    async def _within(aw: Awaitable[T], seconds: float) -> T:
        async with asyncio.timeout(seconds):  # a timer handle, no extra task
            return await aw

else:  # pragma: no cover - Python 3.10

    async def _within(aw: Awaitable[T], seconds: float) -> T:
        return await asyncio.wait_for(aw, seconds)


class UpstreamError(Exception):
    """A backend did not give a usable answer; ``reason`` names why, ``status`` the HTTP code
    (when there was one) and ``retry_after`` what the backend asked for (seconds)."""

    def __init__(
        self,
        reason: str,
        message: str = "",
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool = True,
    ) -> None:
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable
        super().__init__(message or reason)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 3600 else None


def _status_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    text = body[:300].decode("utf-8", "replace")
    # 4xx other than 408/409/429 is the request's fault: another backend will say the same.
    retryable = status >= 500 or status in (408, 409, 429)
    return UpstreamError(
        f"error:{status}",
        f"upstream answered HTTP {status}: {text}",
        status=status,
        retry_after=_retry_after(headers),
        retryable=retryable,
    )


def _transport_error(exc: BaseException) -> UpstreamError:
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamError("error:timeout", "upstream timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError("error:connect", f"cannot connect to upstream: {exc}")
    return UpstreamError("error:transport", f"upstream transport failed: {exc!r}")


class Upstream:
    """One live backend's HTTP side: a pooled keep-alive ``aiohttp`` session (made on first
    use, inside the running event loop)."""

    def __init__(self, cfg: BackendConfig) -> None:
        self.cfg = cfg
        self.ollama = cfg.type == "ollama"
        self._headers = {"content-type": "application/json", **cfg.headers}
        if cfg.api_key:
            self._headers["authorization"] = f"Bearer {cfg.api_key}"
        self._session: aiohttp.ClientSession | None = None
        self._drains: set[asyncio.Task[None]] = set()
        self.in_flight = 0  # calls and streams using the session (a reload closes it at 0)
        # Parsed once: a str URL is parsed again on every request.
        self._chat_url = yarl.URL(cfg.url + ("/api/chat" if self.ollama else "/chat/completions"))

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=1024, ttl_dns_cache=300)
            # No cookie jar: a proxy must not carry one client's upstream cookies into another
            # client's requests (and the jar costs a filter pass on every request and answer).
            session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                auto_decompress=True,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._session = session
        return session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _body(self, body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        out = dict(body)
        if self.cfg.model is not None:
            out["model"] = self.cfg.model
        if self.ollama:
            return _to_ollama(out, stream)
        out["stream"] = stream
        if not stream:
            out.pop("stream_options", None)
        return out

    # ------------------------------------------------------------------ JSON

    async def complete(self, body: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """The upstream's chat.completion for ``body`` within ``timeout`` seconds."""
        payload = dumps(self._body(body, False))
        limit = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, self.cfg.connect_timeout))
        self.in_flight += 1
        try:
            async with self._client().post(self._chat_url, data=payload, timeout=limit) as resp:
                content = await resp.read()
                status, headers = resp.status, resp.headers
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc) from exc
        finally:
            self.in_flight -= 1
        if status != 200:
            raise _status_error(status, headers, content)
        try:
            data = loads(content)
        except ValueError as exc:
            raise UpstreamError("error:invalid_json", "upstream sent invalid JSON") from exc
        if not isinstance(data, dict):
            raise UpstreamError("error:invalid_json", "upstream sent a non-object")
        if self.ollama:
            return _from_ollama(data, str(body.get("model") or ""))
        return data

    # ------------------------------------------------------------------ streaming

    async def stream(
        self, body: Mapping[str, Any], first_byte_timeout: float, stall_timeout: float
    ) -> AsyncIterator[Batch]:
        """Yield the upstream's chunks, one batch per network read: ``(chunk, line)`` pairs,
        ``line`` being the SSE event to forward (the upstream's own bytes for an OpenAI
        backend: not serialised again). Raise UpstreamError on a status, a timeout or a
        stall. The stream ends normally only on ``[DONE]`` (OpenAI) or ``done: true``
        (Ollama); the chunks read before an error are yielded before it is raised."""
        self.in_flight += 1
        inner = self._stream(body, first_byte_timeout, stall_timeout)
        try:
            async for batch in inner:
                yield batch
        finally:
            self.in_flight -= 1
            await inner.aclose()  # type: ignore[attr-defined]

    async def _stream(
        self, body: Mapping[str, Any], first_byte_timeout: float, stall_timeout: float
    ) -> AsyncIterator[Batch]:
        payload = dumps(self._body(body, True))
        limit = aiohttp.ClientTimeout(
            total=None, connect=min(first_byte_timeout, self.cfg.connect_timeout)
        )
        try:
            resp = await _within(
                self._client().post(self._chat_url, data=payload, timeout=limit),
                first_byte_timeout,
            )
        except asyncio.TimeoutError as exc:
            raise UpstreamError("error:first_byte_timeout", "no answer before first byte") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc) from exc
        handed_off = False
        try:
            if resp.status != 200:
                raise _status_error(resp.status, resp.headers, await resp.read())
            model = str(body.get("model") or "")
            created = int(time.time())
            waiting = first_byte_timeout
            reason = "error:first_byte_timeout"
            buf = b""
            while True:
                try:
                    data = await _within(resp.content.readany(), waiting)
                except asyncio.TimeoutError as exc:
                    raise UpstreamError(reason, f"no data for {waiting:g}s") from exc
                except (aiohttp.ClientError, OSError) as exc:
                    raise _transport_error(exc) from exc
                if not data:
                    raise UpstreamError(
                        "error:truncated", "upstream closed the stream before its end"
                    )
                waiting, reason = stall_timeout, "error:stall"
                buf += data
                *lines, buf = buf.split(b"\n")
                batch: Batch = []
                try:
                    done = self._parse_lines(lines, batch, model, created)
                except UpstreamError:
                    if batch:
                        yield batch
                    raise
                if batch:
                    yield batch
                if done:
                    if not resp.content.is_eof():
                        # The end of the HTTP body ([DONE] came before the chunked
                        # terminator): read it in the background, so that the connection goes
                        # back to the pool instead of being closed (a new connect, and a TLS
                        # handshake, for the next request otherwise).
                        handed_off = True
                        task = asyncio.ensure_future(_finish_body(resp))
                        self._drains.add(task)
                        task.add_done_callback(self._drains.discard)
                    return
        finally:
            if not handed_off:
                resp.release()

    def _parse_lines(self, lines: list[bytes], batch: Batch, model: str, created: int) -> bool:
        """Append the chunks of ``lines`` to ``batch``; True at the stream's end."""
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            if self.ollama:
                chunk = _ollama_chunk(line, model, created)
                done = chunk.pop("_done", False)
                batch.append((chunk, b"data: " + dumps(chunk) + b"\n\n"))
                if done:
                    return True
                continue
            if not line.startswith(b"data:"):
                continue  # comments, event: and id: lines
            text = line[5:].strip()
            if text == b"[DONE]":
                return True
            try:
                parsed = loads(text)
            except ValueError as exc:
                raise UpstreamError("error:invalid_json", "invalid JSON in stream") from exc
            if not isinstance(parsed, dict):
                continue
            if "error" in parsed and "choices" not in parsed:
                raise UpstreamError("error:stream_error", f"upstream error event: {text[:300]!r}")
            batch.append((parsed, b"data: " + text + b"\n\n"))
        return False

    # ------------------------------------------------------------------ passthrough

    async def passthrough(
        self, method: str, path: str, body: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        """Forward a request (``/embeddings``) as is: (status, body)."""
        limit = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, self.cfg.connect_timeout))
        try:
            async with self._client().request(
                method, self.cfg.url + path, data=body, timeout=limit
            ) as resp:
                return resp.status, await resp.read()
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc) from exc


async def _finish_body(resp: aiohttp.ClientResponse, seconds: float = 5.0) -> None:
    """Read what is left of a finished stream's body, then release its connection (kept
    alive when the body ended cleanly, closed otherwise)."""
    try:
        await _within(resp.content.read(), seconds)
    except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
        pass  # release() closes a connection whose body did not end
    finally:
        resp.release()


# ---------------------------------------------------------------------------- Ollama shape

_OLLAMA_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "num_predict",
    "seed": "seed",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}


def _to_ollama(body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": body.get("model"),
        "messages": body.get("messages", []),
        "stream": stream,
    }
    options = {o: body[k] for k, o in _OLLAMA_OPTIONS.items() if body.get(k) is not None}
    if options:
        out["options"] = options
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping):
        if fmt.get("type") == "json_object":
            out["format"] = "json"
        elif fmt.get("type") == "json_schema":
            schema = fmt.get("json_schema")
            if isinstance(schema, Mapping) and isinstance(schema.get("schema"), Mapping):
                out["format"] = schema["schema"]
    if body.get("tools"):
        out["tools"] = body["tools"]
    return out


def _finish(data: Mapping[str, Any]) -> str | None:
    if not data.get("done"):
        return None
    reason = data.get("done_reason") or "stop"
    return "length" if reason == "length" else "stop"


def _from_ollama(data: Mapping[str, Any], model: str) -> dict[str, Any]:
    raw_msg = data.get("message")
    msg: Mapping[str, Any] = raw_msg if isinstance(raw_msg, Mapping) else {}
    message: dict[str, Any] = {"role": "assistant", "content": msg.get("content", "")}
    finish = _finish(data) or "stop"
    if msg.get("tool_calls"):
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {
                    "name": (c.get("function") or {}).get("name"),
                    "arguments": dumps((c.get("function") or {}).get("arguments", {})).decode(),
                },
            }
            for i, c in enumerate(msg["tool_calls"])
        ]
        finish = "tool_calls"
    prompt, completion = data.get("prompt_eval_count", 0), data.get("eval_count", 0)
    return {
        "id": f"chatcmpl-ollama-{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model") or model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _ollama_chunk(line: bytes, model: str, created: int) -> dict[str, Any]:
    try:
        data = loads(line)
    except ValueError as exc:
        raise UpstreamError("error:invalid_json", "invalid JSON in Ollama stream") from exc
    if not isinstance(data, dict):
        raise UpstreamError("error:invalid_json", "invalid Ollama stream line")
    if "error" in data:
        raise UpstreamError("error:stream_error", f"Ollama error: {str(data['error'])[:300]}")
    raw_msg = data.get("message")
    msg: Mapping[str, Any] = raw_msg if isinstance(raw_msg, Mapping) else {}
    delta: dict[str, Any] = {}
    if msg.get("content"):
        delta["content"] = msg["content"]
    chunk: dict[str, Any] = {
        "id": f"chatcmpl-ollama-{created}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": data.get("model") or model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": _finish(data)}],
    }
    if data.get("done"):
        chunk["_done"] = True
    return chunk
