#!/usr/bin/env bash
# A throwaway systemd for the package tests: systemd (the host's, 252 on
# Debian 12) as PID 1 of a private PID and mount namespace, on an overlay of
# the host's / whose upper layer is a tmpfs. dpkg, useradd and the units
# write to the overlay only; nothing reaches the host's files. The network
# is the host's, so a broker started outside is at 127.0.0.1.
#
#   packaging/test/container.sh start SHARE_DIR   # prints the PID of the container's systemd
#   packaging/test/container.sh exec PID CMD...    # runs CMD inside (root, chroot, namespaces)
#   packaging/test/container.sh stop PID
#
# SHARE_DIR is bind-mounted at /share inside (packages in, logs out).
# Only systemd's bare core runs: every unit that a target pulls in through
# a .wants folder (udev, tmpfiles, sysctl, getty, the host's services) is
# removed from the overlay first, so nothing touches the kernel's settings
# or starts a second copy of the host's services. Needs root, unshare and
# overlayfs.
set -euo pipefail

inside() {
  local root=$1 share=$2
  mount -t tmpfs -o mode=0755 ev-container "$root"
  mkdir -p "$root"/{upper,work,merged}
  mount -t overlay overlay -o "lowerdir=/,upperdir=$root/upper,workdir=$root/work" "$root/merged"
  local m=$root/merged
  # Everything below writes into $m: make sure it is the overlay.
  [ "$(findmnt -n -o FSTYPE --target "$m")" = overlay ] || { echo "container: no overlay at $m" >&2; exit 1; }
  mount -t proc proc "$m/proc"
  mount --rbind /sys "$m/sys"
  mount --rbind /dev "$m/dev"
  for d in run tmp var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "$m/$d"; done
  mkdir -p "$m/share"
  mount --bind "$share" "$m/share"
  # The bare core: no .wants of any target, no generators, no host units
  # enabled under /etc.
  rm -rf "$m"/lib/systemd/system/*.wants "$m"/etc/systemd/system/*.wants \
    "$m"/lib/systemd/system-generators/* "$m"/usr/lib/systemd/system-generators/*
  # A container image's "no service starts" policy, not a Pi's: without it
  # the package's own try-restart runs as it would on a real system.
  rm -f "$m/usr/sbin/policy-rc.d"
  cat > "$m/etc/systemd/system/ev-container.target" <<'UNIT'
[Unit]
Description=edgevisor package test container
DefaultDependencies=no
UNIT
  export container=edgevisor-test
  exec chroot "$m" /lib/systemd/systemd --system --unit=ev-container.target \
    --log-target=console --log-level=notice
}

case "${1:-}" in
  start)
    share=$(cd "${2:?share dir}" && pwd)
    root=$(mktemp -d /var/tmp/ev-container.XXXXXX)
    log=$share/container.log
    setsid unshare --pid --fork --mount --propagation private \
      "$0" inside "$root" "$share" > "$log" 2>&1 < /dev/null &
    # The container's PID 1 is systemd once `systemctl is-system-running`
    # answers from inside.
    for _ in $(seq 100); do
      pid=$(pgrep -f -- "--unit=ev-container.target" | head -1 || true)
      if [ -n "$pid" ] && nsenter -t "$pid" -m -p -r -w \
        systemctl is-system-running --wait > /dev/null 2>&1; then
        echo "$pid"; exit 0
      fi
      sleep 0.2
    done
    echo "container: systemd did not come up; $log:" >&2
    cat "$log" >&2
    exit 1
    ;;
  inside) inside "$2" "$3" ;;
  exec) pid=$2; shift 2; exec nsenter -t "$pid" -m -p -r -w "$@" ;;
  stop) kill -KILL "${2:?pid}" 2>/dev/null || true ;;
  *) echo "usage: $0 start SHARE_DIR | exec PID CMD... | stop PID" >&2; exit 2 ;;
esac
