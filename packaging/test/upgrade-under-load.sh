#!/usr/bin/env bash
# Upgrades under load with a real systemd (issue 16, part 3): installs the
# .deb in a throwaway systemd (container.sh), enables edgevisor.socket for a
# tcp-listen sensor, and while sensors send readings installs a newer
# package UPGRADES times (`dpkg -i`, which restarts the service) and runs
# `systemctl restart edgevisor.service` RESTARTS times. Passes when:
#   - no connection was refused and the socket unit never restarted;
#   - every restart ran a new process (MainPID changed, service active);
#   - per gateway boot, seq ran from 1 without a gap (nothing accepted was
#     lost), and lines written but never taken in are at most one per
#     connection per restart (what TCP cannot save, docs/raspberry-pi.md).
#
#   packaging/test/upgrade-under-load.sh [--profile release|dev]
#
# Needs root, systemd 252+, mosquitto, mosquitto_sub, python3, cargo-deb,
# and the edgevisor binary of that profile already built (the man pages
# and completions are made here). Prints one `name value unit` line per
# figure; exits 1 on a failed check.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/packaging/test
profile=release
[ "${1:-}" = --profile ] && profile=$2
UPGRADES=${UPGRADES:-3}
RESTARTS=${RESTARTS:-2}
CONNECTIONS=${CONNECTIONS:-10}

share=$(mktemp -d /var/tmp/ev-upgrade.XXXXXX)
pids=(); container=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$container" ] && "$here/container.sh" stop "$container"
  wait 2>/dev/null || true
  [ "${KEEP:-}" = 1 ] && echo "# kept $share" || rm -rf "$share"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -n "$container" ] && ct journalctl -u edgevisor --no-pager -n 40 >&2 || true; exit 1; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
ct() { "$here/container.sh" exec "$container" "$@"; }
# Installs package $1 (0 is the first, then the upgrades) in the container.
install_package() {
  ct dpkg -i "/share/edgevisor-$1.deb" > "$share/dpkg-$1.log" 2>&1 \
    || { cat "$share/dpkg-$1.log"; fail "dpkg -i of package $1"; }
}

# Packages: the same binary under rising versions, as an upgrade sees it.
# CI packs its debug build (`--profile dev`, which cargo-deb warns about):
# what is tested is the packaging and the restart, not the optimiser.
# Stripped and lightly compressed: the debug binary is about 190 MB.
target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$profile" in dev) profile_dir=debug ;; *) profile_dir=$profile ;; esac
[ -x "$target_dir/$profile_dir/edgevisor" ] || { echo "no $target_dir/$profile_dir/edgevisor: build it first" >&2; exit 1; }
(cd "$root" && cargo run --locked -q -p edgevisor-gen -- --out "$target_dir/$profile_dir/assets" >/dev/null)
for i in $(seq 0 "$UPGRADES"); do
  (cd "$root" && cargo deb -p edgevisor --no-build --strip --fast --profile "$profile" \
    --deb-version "0.1.0-$((i + 1))" -o "$share/edgevisor-$i.deb" >/dev/null)
done

broker=$(free_port); sensor=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n' \
  "$broker" > "$share/mosquitto.conf"
mosquitto -c "$share/mosquitto.conf" > "$share/mosquitto.log" 2>&1 & pids+=($!)

container=$("$here/container.sh" start "$share")
install_package 0
ct sh -c "cat > /etc/edgevisor/edgevisor.toml" <<TOML
[gateway]
id = "upgrade"

[upstream]
url = "mqtt://127.0.0.1:$broker"

[[sensor]]
id = "load"
transport = "tcp-listen"
listen = "127.0.0.1:$sensor"
codec = "json"
max_connections = 64
read_timeout = "1h"
TOML
# What `systemctl edit --full edgevisor.socket` would leave: the shipped
# unit with the sensor's address.
ct sh -c "sed 's/^ListenStream=.*/ListenStream=127.0.0.1:$sensor/' \
  /usr/lib/systemd/system/edgevisor.socket > /etc/systemd/system/edgevisor.socket"
ct systemctl daemon-reload
ct systemctl enable --now edgevisor.socket >/dev/null 2>&1
ct systemctl start edgevisor.service || fail "edgevisor.service did not start"
socket_since=$(ct systemctl show edgevisor.socket -p ActiveEnterTimestampMonotonic --value)

stop_file=$share/stop
python3 "$here/load.py" --port "$sensor" --broker-port "$broker" \
  --connections "$CONNECTIONS" --stop-file "$stop_file" > "$share/report.json" & loader=$!
pids+=($loader)
sleep 3

main_pid() { ct systemctl show edgevisor.service -p MainPID --value; }
restart_one() {
  local before=$1 what=$2
  # Active means READY=1: the new process holds the socket again.
  for _ in $(seq 150); do
    now=$(main_pid)
    if [ "$now" != 0 ] && [ "$now" != "$before" ] && ct systemctl is-active --quiet edgevisor.service; then
      return 0
    fi
    sleep 0.2
  done
  fail "$what: no new active edgevisor process"
}
for i in $(seq 1 "$UPGRADES"); do
  before=$(main_pid)
  install_package "$i"
  restart_one "$before" "upgrade $i"
  sleep 2
done
for i in $(seq 1 "$RESTARTS"); do
  before=$(main_pid)
  ct systemctl restart edgevisor.service
  restart_one "$before" "restart $i"
  sleep 2
done
touch "$stop_file"
wait "$loader" || fail "load.py"
version=$(ct dpkg-query -W -f '${Version}' edgevisor)
socket_after=$(ct systemctl show edgevisor.socket -p ActiveEnterTimestampMonotonic --value)

python3 - "$share/report.json" "$((UPGRADES + RESTARTS))" "$CONNECTIONS" "$version" "$socket_since" "$socket_after" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
restarts, connections = int(sys.argv[2]), int(sys.argv[3])
version, since, after = sys.argv[4], sys.argv[5], sys.argv[6]
for key in ("written", "delivered", "unread", "refused", "reopened", "duplicates"):
    print(f"upgrade.{key} {report[key]} {'connections' if key in ('refused', 'reopened') else 'readings'}")
print(f"upgrade.restarts {restarts} restarts")
print(f"upgrade.boots {len(report['boots'])} boots")
print(f"# installed version at the end: {version}")
failures = []
if report["refused"]:
    failures.append(f"{report['refused']} connections refused")
if since != after:
    failures.append("edgevisor.socket restarted (its ports closed)")
if report["seq_gaps"]:
    failures.append(f"seq gaps (accepted readings lost): {report['seq_gaps']}")
if len(report["boots"]) != restarts + 1:
    failures.append(f"{len(report['boots'])} boots delivered readings, expected {restarts + 1}")
if report["unread"] > connections * restarts:
    failures.append(f"{report['unread']} lines never taken in: more than one per connection per restart")
if report["delivered"] == 0:
    failures.append("nothing delivered")
if failures:
    print("FAIL: " + "; ".join(failures), file=sys.stderr)
    sys.exit(1)
print("upgrade: ok")
PY
