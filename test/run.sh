#!/usr/bin/env bash
# The test command (make test): static and render tests, then the lab integration suite.
# Fails when any test or lint fails.
#   --no-lab   skip the lab suite
#   --matrix   run the lab suite once per Debian release (bookworm, trixie)
# The lab suite's release: $MOODLE_HA_LAB_RELEASE (default trixie).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PYTEST=".venv/bin/pytest"
RELEASES="bookworm trixie"

status=0
echo "== unit, render and lint tests"
"$PYTEST" -m "not lab" -n 2 test || status=$?
[ "$status" -eq 5 ] && { echo "no unit/render test ran"; status=1; }
[ "$status" -ne 0 ] && { echo "unit/render/lint tests failed ($status)"; exit "$status"; }

lab_suite() {  # $1: release
  local rc=0
  echo "== lab integration tests: five systemd-nspawn $1 hosts"
  MOODLE_HA_LAB_RELEASE="$1" "$PYTEST" -m lab test/integration || rc=$?
  [ "$rc" -eq 5 ] && { echo "no lab test ran"; rc=1; }
  return "$rc"
}

case "${1:-}" in
  --no-lab)
    exit 0 ;;
  --matrix)
    failed=""
    for release in $RELEASES; do
      lab_suite "$release" || failed="$failed $release"
    done
    [ -n "$failed" ] && { echo "lab suite failed on:$failed"; exit 1; }
    echo "lab suite passed on: $RELEASES"
    exit 0 ;;
  *)
    lab_suite "${MOODLE_HA_LAB_RELEASE:-trixie}"
    exit $? ;;
esac
