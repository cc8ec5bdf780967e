#!/bin/sh
# Host packages the lab needs (test/lab/lab.py up also installs them when missing).
set -eu
need=""
command -v debootstrap >/dev/null || need="$need debootstrap"
command -v systemd-nspawn >/dev/null || need="$need systemd-container"
command -v apt-cacher-ng >/dev/null || need="$need apt-cacher-ng"
command -v nft >/dev/null || need="$need nftables"
command -v ip >/dev/null || need="$need iproute2"
command -v nsenter >/dev/null || need="$need util-linux"
command -v ping >/dev/null || need="$need iputils-ping"
if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $need
    # The packaged apt-cacher-ng service, started by its postinst, would hold port 3142 on
    # every address; the lab runs its own instance bound to the bridge only.
    case "$need" in *apt-cacher-ng*)
        if [ -d /run/systemd/system ]; then
            systemctl disable --now apt-cacher-ng >/dev/null 2>&1 || true
        elif [ -x /etc/init.d/apt-cacher-ng ]; then
            /etc/init.d/apt-cacher-ng stop >/dev/null 2>&1 || true
            update-rc.d apt-cacher-ng disable >/dev/null 2>&1 || true
        fi ;;
    esac
fi
