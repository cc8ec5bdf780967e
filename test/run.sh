#!/usr/bin/env bash
# The test command (make test): static and render tests, then the lab integration suite.
# Fails when any test or lint fails.
#   (none)     the whole lab suite on the default release (Debian 13, trixie)
#   --no-lab   skip the lab suite
#   --matrix   the above, then the arbitrator topology (test/lab/topologies/garbd.yaml) with a
#              web node added to it, and the whole lab suite on Debian 12 (bookworm)
#              (make test-matrix; kept out of `make test` to hold CI under its time budget)
# With $MOODLE_HA_LAB_RELEASE set, the whole lab suite on that release only.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PYTEST=".venv/bin/pytest"

status=0
sh test/install-parsers.sh || { echo "installing the parsers for the render tests failed"; exit 1; }
echo "== unit, render and lint tests"
"$PYTEST" -m "not lab" -n 2 test || status=$?
[ "$status" -eq 5 ] && { echo "no unit/render test ran"; status=1; }
[ "$status" -ne 0 ] && { echo "unit/render/lint tests failed ($status)"; exit "$status"; }

lab_suite() {  # $1: release, $2...: test paths (default: the whole suite)
  local rc=0 release=$1
  shift
  echo "== lab integration tests: systemd-nspawn $release hosts${MOODLE_HA_LAB_PILLAR:+ of $MOODLE_HA_LAB_PILLAR}${1:+: $*}"
  [ "$#" -eq 0 ] && set -- test/integration
  MOODLE_HA_LAB_RELEASE="$release" "$PYTEST" -m lab -rP "$@" || rc=$?
  [ "$rc" -eq 5 ] && { echo "no lab test ran"; rc=1; }
  return "$rc"
}

garbd_suite() {
  # The arbitrator topology (Galera over TLS) on a lab of its own, then a web node added to
  # it (make test-garbd).
  MOODLE_HA_LAB_PILLAR=test/lab/topologies/garbd.yaml lab_suite trixie \
    test/integration/test_garbd.py test/integration/test_galera_tls.py \
    test/integration/test_scale.py
}

case "${1:-}" in
  --no-lab)
    exit 0 ;;
  --matrix)
    rc=0
    lab_suite trixie || rc=1
    garbd_suite || rc=1
    lab_suite bookworm || rc=1
    exit "$rc" ;;
  *)
    if [ -n "${MOODLE_HA_LAB_RELEASE:-}" ]; then
      lab_suite "$MOODLE_HA_LAB_RELEASE"
      exit $?
    fi
    lab_suite trixie
    exit $? ;;
esac
