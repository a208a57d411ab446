"""The ``tripwise`` command line (argparse, so the core install needs nothing else)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tripwise import __version__


def _demo(args: argparse.Namespace) -> int:
    from tripwise.demo import run_demo

    run_demo(sys.stdout)
    return 0


def _serve(rest: Sequence[str]) -> int:
    try:
        from tripwise.server.cli import serve_main
    except ImportError as exc:
        sys.stderr.write(
            f"tripwise serve needs the server extra ({exc.name} is missing): "
            "pip install 'tripwise[server]'\n"
        )
        return 2
    return int(serve_main(list(rest)) or 0)


def _gateway(rest: Sequence[str]) -> int:
    try:
        from tripwise.gateway.server import main as gateway_main
    except ImportError as exc:
        sys.stderr.write(
            f"tripwise gateway needs the gateway extra ({exc.name} is missing): "
            "pip install 'tripwise[gateway]'\n"
        )
        return 2
    return int(gateway_main(list(rest)) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tripwise",
        description="Circuit breakers that trip on model-output quality, errors and latency.",
    )
    parser.add_argument("--version", action="version", version=f"tripwise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run a short demo in the terminal (no services needed)")
    demo.set_defaults(func=_demo)
    # `serve` has its own parser (in tripwise.server); it is only listed here.
    sub.add_parser("serve", help="run the control plane (tripwise[server]); serve --help")
    sub.add_parser("gateway", help="run the OpenAI-compatible gateway (tripwise[gateway])")
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        return _serve(args_list[1:])
    if args_list[:1] == ["gateway"]:
        return _gateway(args_list[1:])
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
