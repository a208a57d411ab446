#!/usr/bin/env bash
# Installs tripwise with its test dependencies into .venv, then runs lint, format check,
# type check and the whole test suite. Extra arguments go to pytest (main venv only).
#
# Every other supported CPython (3.10-3.13) that is installed also runs the unit suite
# (tests/unit), each in its own venv .venv-3.X with the same extras (logs in .test-logs/),
# in the background while the main venv runs the whole suite. A version that fails fails the script. A supported version
# that is not installed is reported and skipped, except under CI=true, where it is a failure.
# SUPPORTED_PYTHONS="3.10 3.12" narrows the list; SUPPORTED_PYTHONS="" runs the main venv only.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
SUPPORTED_PYTHONS="${SUPPORTED_PYTHONS-3.10 3.11 3.12 3.13}"
EXTRAS='.[all,dev,ml]'
LOGS=.test-logs
start=$(date +%s)

quiet_pip() { # pip, without the noise of unreachable local index mirrors
  "$1" -m pip install --quiet --disable-pip-version-check "${@:2}" 2> >(grep -v '^WARNING: Location' >&2)
}

# A venv is (re)installed only when pyproject.toml changed since its last install.
ensure_venv() { # ensure_venv DIR INTERPRETER
  local dir=$1 interpreter=$2 stamp
  stamp=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -x "$dir/bin/python" ]; then
    "$interpreter" -m venv "$dir"
  fi
  if [ "$(cat "$dir/.tripwise-installed" 2>/dev/null)" != "$stamp" ]; then
    quiet_pip "$dir/bin/python" -e "$EXTRAS"
    echo "$stamp" >"$dir/.tripwise-installed"
  fi
}

find_python() { # find_python 3.X: an interpreter of that version, or nothing
  local v=$1 candidate
  for candidate in "python$v" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$v" ]; then
      command -v "$candidate"
      return
    fi
  done
}

ensure_venv .venv "$PYTHON"
# openai 2.x beside the venv's 3.x, for tests/integration/llm/test_openai2_httpx.py: downloaded
# here once per spec into the user's cache (a warm check is a stat), not inside a timed test.
.venv/bin/python -m tests.support.openai2 >/dev/null ||
  echo "test.sh: openai 2.x could not be installed: test_openai2_httpx will fail" >&2
main_version=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# --- the other supported versions: venvs in parallel, then their unit suites in background
mkdir -p "$LOGS"
others=()
missing=()
for v in $SUPPORTED_PYTHONS; do
  [ "$v" = "$main_version" ] && continue
  interpreter=$(find_python "$v")
  if [ -z "$interpreter" ]; then
    missing+=("$v")
  else
    others+=("$v:$interpreter")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: Python ${missing[*]} not installed: unit suite not run there" >&2
  if [ "${CI:-}" = "true" ]; then
    echo "test.sh: under CI every supported Python must be installed" >&2
    exit 1
  fi
fi
# One background job: installs every venv in parallel, then runs their unit suites one after
# the other at a lower priority (one core, niced, so the integration tests are not starved).
other_versions() {
  local entry v pids=() failed=0
  for entry in "${others[@]}"; do
    v=${entry%%:*}
    (ensure_venv ".venv-$v" "${entry#*:}" >"$LOGS/install-$v.log" 2>&1 ||
      { echo "installing into .venv-$v failed" >>"$LOGS/install-$v.log"; exit 1; }) &
    pids+=("$!")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || echo "FAILED: install (see $LOGS/install-${others[$i]%%:*}.log)" \
      >"$LOGS/summary-${others[$i]%%:*}"
  done
  for entry in "${others[@]}"; do
    v=${entry%%:*}
    if grep -qs FAILED "$LOGS/summary-$v"; then failed=1; continue; fi
    local t0 rc=0
    t0=$(date +%s)
    nice -n 10 ".venv-$v/bin/python" -m pytest -q -p no:cacheprovider tests/unit >"$LOGS/unit-$v.log" 2>&1 || rc=$?
    local verdict="ok"
    [ $rc -eq 0 ] || { verdict="FAILED"; failed=1; }
    echo "$verdict: unit suite on Python $v: $(tail -n 1 "$LOGS/unit-$v.log") ($(($(date +%s) - t0)) s)" \
      >"$LOGS/summary-$v"
  done
  return $failed
}
rm -f "$LOGS"/summary-*
others_pid=""
if [ ${#others[@]} -gt 0 ]; then
  other_versions &
  others_pid=$!
fi

# --- the main venv: lint, types, the whole suite
status=0
.venv/bin/ruff check . || status=1
.venv/bin/ruff format --check . || status=1  # (not the guides: see pyproject)
.venv/bin/mypy --strict src/tripwise/core || status=1
.venv/bin/mypy src/tripwise || status=1
t0=$(date +%s)
.venv/bin/python -m pytest -q "$@" || status=1
echo "test.sh: pytest on Python $main_version (main venv): $(($(date +%s) - t0)) s"

if [ -n "$others_pid" ]; then
  wait "$others_pid" || status=1
  for entry in "${others[@]}"; do
    v=${entry%%:*}
    echo "test.sh: $(cat "$LOGS/summary-$v" 2>/dev/null || echo "FAILED: Python $v did not report")"
    if ! grep -qs '^ok' "$LOGS/summary-$v"; then
      status=1
      tail -n 30 "$LOGS/unit-$v.log" "$LOGS/install-$v.log" 2>/dev/null >&2 || true
    fi
  done
fi
echo "test.sh: total $(($(date +%s) - start)) s"
exit $status
