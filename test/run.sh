#!/usr/bin/env bash
# The test command (make test): static and render tests, then the lab integration suite.
# Fails when any test or lint fails. --no-lab skips the lab suite.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=".venv/bin/pytest"

status=0
echo "== unit, render and lint tests"
"$PYTEST" -m "not lab" -n 2 test || status=$?
[ "$status" -eq 5 ] && { echo "no unit/render test ran"; status=1; }
[ "$status" -ne 0 ] && { echo "unit/render/lint tests failed ($status)"; exit "$status"; }

if [ "${1:-}" = "--no-lab" ]; then
  exit 0
fi

echo "== lab integration tests (five systemd-nspawn hosts)"
"$PYTEST" -m lab test/integration || status=$?
[ "$status" -eq 5 ] && { echo "no lab test ran"; status=1; }
exit "$status"
