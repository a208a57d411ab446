"""Render the chart's templates without a helm binary (neither the machine's apt nor PyPI ships
one): a small evaluator for the subset of Go templates the chart uses. The chart's templates
stay within it: ``.Values``/``.Release``/``.Chart`` paths, ``if``/``else``/``with``/``end``,
``quote``, ``toYaml``, ``toJson``, ``nindent``, ``sha256sum``, ``add``, ``not``, ``or``,
``default``; an unknown function or action fails the render (so the subset cannot drift)."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)


class RenderError(Exception):
    pass


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _truthy(v: Any) -> bool:
    return v not in (None, False, 0, "", [], {})


def _to_yaml(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=False, sort_keys=True).rstrip("\n")


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class _Renderer:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def lookup(self, path: str, dot: Any) -> Any:
        if path == ".":
            return dot
        base = self.root if path.startswith(".") and path.split(".")[1] in self.root else dot
        cur = base
        for part in path.strip(".").split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        return cur

    def arg(self, token: str, dot: Any) -> Any:
        if token.startswith("."):
            return self.lookup(token, dot)
        if token.startswith('"'):
            return json.loads(token)
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        raise RenderError(f"unsupported template argument {token!r}")

    def call(self, name: str, args: list[Any]) -> Any:
        if name == "quote":
            return json.dumps(_fmt(args[0]))
        if name == "toYaml":
            return _to_yaml(args[0])
        if name == "toJson":
            return json.dumps(args[0], sort_keys=True, separators=(",", ":"))
        if name == "sha256sum":
            return hashlib.sha256(str(args[0]).encode()).hexdigest()
        if name == "nindent":
            n, text = args
            return "\n" + "\n".join(" " * n + line if line else line for line in text.split("\n"))
        if name == "add":
            return sum(int(a) for a in args)
        if name == "not":
            return not _truthy(args[0])
        if name == "or":
            return next((a for a in args if _truthy(a)), args[-1])
        if name == "default":
            return args[1] if _truthy(args[1]) else args[0]
        raise RenderError(f"unsupported template function {name!r}")

    def pipeline(self, text: str, dot: Any) -> Any:
        value: Any = None
        for i, part in enumerate(p.strip() for p in text.split("|")):
            tokens = shlex.split(part, posix=False)
            if tokens[0].startswith((".", '"')) or re.fullmatch(r"-?\d+", tokens[0]):
                if len(tokens) != 1:
                    raise RenderError(f"cannot apply {tokens!r}")
                value = self.arg(tokens[0], dot)
                continue
            args = [self.arg(t, dot) for t in tokens[1:]]
            if i > 0:
                args.append(value)
            value = self.call(tokens[0], args)
        return value


def _parse(text: str) -> list[Any]:
    """Tokens -> a nested list: str, ("expr", s), ("if"/"with", s, body, else_body)."""
    pieces: list[Any] = []
    pos = 0
    for m in _ACTION.finditer(text):
        chunk = text[pos : m.start()]
        if m.group(1):
            chunk = chunk.rstrip()
        pieces.append(chunk)
        pieces.append(("action", m.group(2), bool(m.group(3))))
        pos = m.end()
    pieces.append(text[pos:])
    # right-trim: strip leading whitespace of the text after a '-}}'
    for i, p in enumerate(pieces):
        if isinstance(p, tuple) and p[2] and i + 1 < len(pieces):
            pieces[i + 1] = pieces[i + 1].lstrip()

    def block(it: Any) -> tuple[list[Any], str | None]:
        body: list[Any] = []
        for p in it:
            if isinstance(p, str):
                body.append(p)
                continue
            action = p[1]
            if action.startswith("/*"):
                continue
            word = action.split(" ", 1)[0]
            if word in ("if", "with"):
                inner, stop = block(it)
                other: list[Any] = []
                if stop == "else":
                    other, stop = block(it)
                if stop != "end":
                    raise RenderError(f"{word} without end")
                body.append((word, action[len(word) :].strip(), inner, other))
            elif word in ("else", "end"):
                return body, word
            elif word in ("range", "define", "template", "include", "block"):
                raise RenderError(f"unsupported action {word!r}")
            else:
                body.append(("expr", action))
        return body, None

    tree, stop = block(iter(pieces))
    if stop is not None:
        raise RenderError(f"unexpected {stop}")
    return tree


def render_template(text: str, root: dict[str, Any]) -> str:
    r = _Renderer(root)

    def run(nodes: list[Any], dot: Any) -> str:
        out = []
        for n in nodes:
            if isinstance(n, str):
                out.append(n)
            elif n[0] == "expr":
                out.append(_fmt(r.pipeline(n[1], dot)))
            elif n[0] == "if":
                out.append(run(n[2] if _truthy(r.pipeline(n[1], dot)) else n[3], dot))
            else:  # with
                value = r.pipeline(n[1], dot)
                out.append(run(n[2], value) if _truthy(value) else run(n[3], dot))
        return "".join(out)

    return run(_parse(text), root)


def render_chart(
    chart: Path, value_files: list[Path] = (), release: str = "gw", **overrides: Any
) -> dict[str, list[dict[str, Any]]]:
    """Every template of ``chart`` rendered: {template name: [YAML documents]}."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    values = yaml.safe_load((chart / "values.yaml").read_text())
    for f in value_files:
        values = deep_merge(values, yaml.safe_load(f.read_text()) or {})
    values = deep_merge(values, overrides)
    root = {
        "Values": values,
        "Release": {"Name": release, "Namespace": "default"},
        "Chart": {
            "Name": meta["name"],
            "Version": meta["version"],
            "AppVersion": meta["appVersion"],
        },
    }
    out = {}
    for t in sorted((chart / "templates").glob("*.yaml")):
        text = render_template(t.read_text(), root)
        out[t.name] = [d for d in yaml.safe_load_all(text) if d]
    return out
