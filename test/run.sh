#!/usr/bin/env bash
# The test command (make test): static and render tests, then the lab integration suite.
# Fails when any test or lint fails.
#   (none)     the whole lab suite on the default release (Debian 13, trixie), then the smoke
#              set on Debian 12 (bookworm): deploy, no-op re-run, checks, one failover,
#              backup and restore; then the arbitrator topology (test/lab/topologies/garbd.yaml)
#              and a web node added to it
#   --no-lab   skip the lab suite
#   --matrix   the whole lab suite once per Debian release (bookworm, trixie)
# With $MOODLE_HA_LAB_RELEASE set, the whole lab suite on that release only.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PYTEST=".venv/bin/pytest"
RELEASES="bookworm trixie"

status=0
sh test/install-parsers.sh || { echo "installing the parsers for the render tests failed"; exit 1; }
echo "== unit, render and lint tests"
"$PYTEST" -m "not lab" -n 2 test || status=$?
[ "$status" -eq 5 ] && { echo "no unit/render test ran"; status=1; }
[ "$status" -ne 0 ] && { echo "unit/render/lint tests failed ($status)"; exit "$status"; }

# Tests that prove a release converges, re-runs clean, fails over, and backs up and restores
# (mariabackup and its files differ between MariaDB 10.11 and 11.8), and carries every secret
# byte-exact (option-file parsing and the SST scripts differ too).
SMOKE=(test/integration/test_deploy.py
       test/integration/test_failover.py::test_killing_the_active_writer_lets_3307_serve_from_a_backup
       test/integration/test_backup.py
       test/integration/test_secrets.py)

lab_suite() {  # $1: release, $2...: test paths (default: the whole suite)
  local rc=0 release=$1
  shift
  echo "== lab integration tests: systemd-nspawn $release hosts${MOODLE_HA_LAB_PILLAR:+ of $MOODLE_HA_LAB_PILLAR}${1:+: $*}"
  [ "$#" -eq 0 ] && set -- test/integration
  MOODLE_HA_LAB_RELEASE="$release" "$PYTEST" -m lab -rP "$@" || rc=$?
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
    if [ -n "${MOODLE_HA_LAB_RELEASE:-}" ]; then
      lab_suite "$MOODLE_HA_LAB_RELEASE"
      exit $?
    fi
    lab_suite trixie; rc=$?
    lab_suite bookworm "${SMOKE[@]}" || rc=1
    # The arbitrator topology on a lab of its own, then a web node added to it (make test-garbd).
    MOODLE_HA_LAB_PILLAR=test/lab/topologies/garbd.yaml \
      lab_suite trixie test/integration/test_garbd.py test/integration/test_scale.py || rc=1
    exit "$rc" ;;
esac
