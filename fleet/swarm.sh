#!/usr/bin/env bash
# A fleet of real gateways to look at with `edgevisor fleet`: builds the
# gateway and runs fleet/examples/swarm.rs (a Mosquitto on a free port,
# N gateways with TCP sensors that crash now and then, and a quarantined
# sensor on every other gateway). It prints the broker URL; Ctrl-C stops
# everything.
#
#   fleet/swarm.sh [--gateways 5] [--for 600]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"   # Debian's mosquitto
cargo build -q -p edgevisor
exec cargo run -q -p edgevisor-fleet --example swarm -- "$@"
