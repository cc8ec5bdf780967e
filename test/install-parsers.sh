#!/bin/sh
# The real parsers the render tests read secrets back with (test/render/test_secrets_render.py):
# MariaDB's option-file reader and the php CLI (no daemon comes with either). haproxy's parser
# is checked in the lab (test/integration/test_secrets.py), so no HAProxy service is installed
# on this machine. nft checks the rendered firewall tables (test/render/test_firewall_layer.py:
# nft -c loads nothing). Needs root and apt; elsewhere those render checks are skipped.
set -eu
need=""
command -v my_print_defaults >/dev/null || need="$need mariadb-client-core"
command -v php >/dev/null || need="$need php-cli"
command -v openssl >/dev/null || need="$need openssl"
command -v nft >/dev/null || need="$need nftables"
[ -z "$need" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "test/install-parsers.sh: not root or no apt: render checks with$need skipped"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $need >/dev/null
