"""Every ```python block of README.md and docs/*.md runs as written.

The blocks of one file run in order in one namespace (later blocks build on earlier ones), in a
fresh interpreter per file so that process-wide state (the default registry, prometheus-client's
global registry) starts clean. Top-level ``await`` is allowed. Two HTML comments, invisible on
the rendered page, steer a block; they sit on the lines right before it:

- ``<!-- docs-example: setup`` ... ``-->``: code run first, defining what the prose leaves to the
  reader (``big_model``, ``prompt``, ...), never anything the block itself should show;
- ``<!-- docs-example: skip: REASON -->``: a block that cannot run here (a Redis host, a running
  control plane); REASON is required.

A page whose examples use the local Redis (``RedisStore("redis://127.0.0.1:6379/0",
namespace="recsys")``) runs as written; the keys of those namespaces are deleted from that Redis
before and after the page, so the shared server keeps nothing of the docs' examples.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARK = re.compile(r"<!--\s*docs-example:\s*(setup|skip)\b(.*)-->\s*\Z", re.S)


@dataclass
class Block:
    path: Path
    line: int
    code: str
    setup: str = ""
    skip: str | None = None


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in _FENCE.finditer(text):
        block = Block(path, text.count("\n", 0, match.start()) + 2, match.group(1))
        before = text[: match.start()]
        mark = _MARK.match(before[before.rfind("<!--") :]) if "<!--" in before else None
        if mark is not None:
            kind, body = mark.groups()
            if kind == "skip":
                block.skip = body.strip().lstrip(":").strip()
            else:
                block.setup = body.strip("\n")
        found.append(block)
    return found


# Runs in the child interpreter: argv = [path, then line, setup, code for each block].
_RUNNER = """
import ast, asyncio, inspect, sys
path, args = sys.argv[1], sys.argv[2:]
namespace = {"__name__": "docs_example"}
for i in range(0, len(args), 3):
    line, setup, code = int(args[i]), args[i + 1], args[i + 2]
    for source, where in ((setup, "setup of"), (code, "")):
        if not source.strip():
            continue
        name = path if not where else f"<{where} {path}:{line}>"
        compiled = compile("\\n" * (line - 1) * (not where) + source, name, "exec",
                           flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(compiled, namespace)
        if inspect.iscoroutine(result):
            asyncio.run(result)
print("ran", len(args) // 3, "blocks")
"""


def run(path: Path, runnable: list[Block]) -> subprocess.CompletedProcess[str]:
    args = [path.name if not path.is_relative_to(ROOT) else str(path.relative_to(ROOT))]
    for b in runnable:
        args += [str(b.line), b.setup, b.code]
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


_LOCAL_REDIS_STORE = re.compile(
    r"""RedisStore\(\s*["'](redis://(?:127\.0\.0\.1|localhost)[:/][^"']*)["']\s*,"""
    r"""\s*namespace\s*=\s*["']([^"'{}]+)["']"""
)


def local_redis_namespaces(runnable: list[Block]) -> set[tuple[str, str]]:
    """(URL, namespace) of every RedisStore on a loopback Redis that the blocks make."""
    return {m.groups() for b in runnable for m in _LOCAL_REDIS_STORE.finditer(b.setup + b.code)}


def redis_keys(stores: set[tuple[str, str]], *, delete: bool = False) -> list[str]:
    """The keys of those namespaces (every key a RedisStore makes starts with ``namespace:``)."""
    if not stores:
        return []
    import redis

    found = []
    for url, namespace in sorted(stores):
        with redis.Redis.from_url(url) as client:
            keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
            if delete and keys:
                client.delete(*keys)
            found += [k.decode() for k in keys]
    return found


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_every_python_block_runs(path: Path) -> None:
    runnable = [b for b in blocks(path) if b.skip is None]
    stores = local_redis_namespaces(runnable)
    redis_keys(stores, delete=True)  # what an interrupted earlier run may have left
    try:
        done = run(path, runnable)
    finally:
        redis_keys(stores, delete=True)
    assert done.returncode == 0, f"{path.name}: an example failed\n{done.stderr[-3000:]}"
    assert f"ran {len(runnable)} blocks" in done.stdout
    assert redis_keys(stores) == []


def test_the_local_redis_stores_of_a_page_are_found() -> None:
    page = [
        Block(Path("p.md"), 1, 'RedisStore("redis://127.0.0.1:6379/0", namespace="recsys")\n'),
        Block(Path("p.md"), 5, "RedisStore('redis://localhost/1',\n    namespace='a-b')\n"),
        Block(Path("p.md"), 9, 'RedisStore("redis://redis.internal:6379/0", namespace="x")\n'),
        Block(Path("p.md"), 13, 'RedisStore(url, namespace="y")\n'),
    ]
    assert local_redis_namespaces(page) == {
        ("redis://127.0.0.1:6379/0", "recsys"),
        ("redis://localhost/1", "a-b"),
    }
    assert local_redis_namespaces(blocks(ROOT / "docs" / "redis.md")) >= {
        ("redis://127.0.0.1:6379/0", "recsys")
    }


def test_a_failing_example_is_reported_at_its_line(tmp_path: Path) -> None:
    page = tmp_path / "broken.md"
    page.write_text("Intro.\n\n```python\nx = 1\nassert x == 2\n```\n")
    done = run(page, blocks(page))
    assert done.returncode != 0
    assert 'File "broken.md", line 5' in done.stderr and "AssertionError" in done.stderr


def test_skipped_blocks_say_why() -> None:
    skipped = [b for p in FILES for b in blocks(p) if b.skip is not None]
    for b in skipped:
        assert b.skip, f"{b.path.name}:{b.line}: a skipped example needs a reason"


def test_the_markers_are_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- docs-example: skip: needs a GPU -->\n```python\nimport torch\n```\n\n"
        "<!-- docs-example: setup\nx = 1\n-->\n```python\nassert x == 1\n```\n\n"
        "```python\nprint('plain')\n```\n"
    )
    first, second, third = blocks(page)
    assert (first.skip, first.line, first.code) == ("needs a GPU", 3, "import torch\n")
    assert (second.skip, second.setup, second.code) == (None, "x = 1", "assert x == 1\n")
    assert (third.skip, third.setup) == (None, "")
