#!/usr/bin/env bash
# Installs tripwise with its test dependencies into .venv, then runs lint, format check,
# type check and the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[all,dev,ml]' 2> >(grep -v '^WARNING: Location' >&2)
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy --strict src/tripwise/core
.venv/bin/mypy src/tripwise
.venv/bin/python -m pytest -q "$@"
