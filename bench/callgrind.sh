#!/usr/bin/env bash
# User-space instructions per reading of an edgevisor binary, counted by
# valgrind's callgrind: repeatable to about 0.5 % for the same binary and
# load, whatever else the machine is doing, unlike CPU time. Kernel work
# (syscalls, wake-ups) is not counted.
#
# usage: bench/callgrind.sh [EDGEVISOR_BINARY]   (default target/release/edgevisor)
#
# The data-path bench runs the gateway under callgrind twice, with 10
# connections for 10 s: at 2,000 readings/s (20,000 readings) and at 10/s
# (100 readings: start, idle and probes). The difference over the 19,900
# extra readings is the cost of a reading. Prints `name value unit` lines.
# Needs valgrind, Mosquitto and a release build of edgevisor-bench.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
binary="$(realpath "${1:-$root/target/release/edgevisor}")"
bench="$root/target/release/edgevisor-bench"
[ -x "$bench" ] || { echo "build the bench first: cargo build --release -p edgevisor-bench" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The bench starts "edgevisor check" and "edgevisor run": only run is counted.
cat >"$work/edgevisor" <<EOF
#!/bin/sh
if [ "\$1" = run ]; then
  exec valgrind --tool=callgrind --callgrind-out-file="$work/out.%p" "$binary" "\$@" 2>>"$work/valgrind.log"
fi
exec "$binary" "\$@"
EOF
chmod +x "$work/edgevisor"

count() { # rate -> total instructions of the gateway process
  rm -f "$work"/out.*
  "$bench" datapath --sections throughput --only edgevisor --connections 10 \
    --rates "$1" --duration 10s --edgevisor "$work/edgevisor" 2>/dev/null |
    grep "^edgevisor.c10.r$1.lost 0 " >/dev/null || { echo "readings were lost at $1/s" >&2; exit 1; }
  awk '/^totals:/ { print $2 }' "$work"/out.*
}

loaded=$(count 2000)
quiet=$(count 10)
echo "edgevisor.callgrind.c10.r2000.instructions $loaded instructions"
echo "edgevisor.callgrind.c10.r10.instructions $quiet instructions"
echo "edgevisor.callgrind.instructions_per_reading $(( (loaded - quiet) / 19900 )) instructions"
