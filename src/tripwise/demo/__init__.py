"""``tripwise demo``: short scenes that show tripwise doing its job, with no services to start."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import TextIO

SCENES = ["core_scene", "quality_scene", "chain_scene"]
"""Scene modules in this package, run in order; a missing module is skipped."""


def run_demo(out: TextIO | None = None, *, fast: bool = True) -> None:
    stream = out if out is not None else sys.stdout
    stream.write("tripwise demo: circuit breakers that trip on model-output quality\n\n")
    # The scenes print every transition themselves; the breakers' own WARNING logs would reach
    # stderr through logging's last-resort handler and interleave duplicates with the story.
    log = logging.getLogger("tripwise")
    level = log.level
    if not log.handlers and not logging.getLogger().handlers:
        log.setLevel(logging.ERROR)
    try:
        _run_scenes(stream, fast)
    finally:
        log.setLevel(level)
    stream.flush()


def _run_scenes(stream: TextIO, fast: bool) -> None:
    for name in SCENES:
        try:
            scene = importlib.import_module(f"tripwise.demo.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"tripwise.demo.{name}":
                raise
            continue
        scene.run(stream, fast=fast)
        stream.write("\n")
