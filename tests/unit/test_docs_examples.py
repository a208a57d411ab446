"""Every ```python block of README.md and docs/*.md runs as written.

The blocks of one file run in order in one namespace (later blocks build on earlier ones), in a
fresh interpreter per file so that process-wide state (the default registry, prometheus-client's
global registry) starts clean. Top-level ``await`` is allowed. Two HTML comments, invisible on
the rendered page, steer a block; they sit on the lines right before it:

- ``<!-- docs-example: setup`` ... ``-->``: code run first, defining what the prose leaves to the
  reader (``big_model``, ``prompt``, ...), never anything the block itself should show;
- ``<!-- docs-example: skip: REASON -->``: a block that cannot run here (a Redis host, a running
  control plane); REASON is required.
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


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_every_python_block_runs(path: Path) -> None:
    runnable = [b for b in blocks(path) if b.skip is None]
    args = [str(path.relative_to(ROOT))]
    for b in runnable:
        args += [str(b.line), b.setup, b.code]
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{path.name}: an example failed\n{done.stderr[-3000:]}"
    assert f"ran {len(runnable)} blocks" in done.stdout


def test_skipped_blocks_say_why_and_are_few() -> None:
    skipped = [b for p in FILES for b in blocks(p) if b.skip is not None]
    for b in skipped:
        assert b.skip, f"{b.path.name}:{b.line}: a skipped example needs a reason"
    total = sum(len(blocks(p)) for p in FILES)
    assert len(skipped) <= total // 4, [f"{b.path.name}:{b.line}" for b in skipped]
