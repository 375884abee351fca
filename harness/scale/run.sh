#!/usr/bin/env bash
# Scale run (issue 16, docs/scale.md): N gateway processes with M simulated
# TCP sensors each, at R Hz, against one Mosquitto or a 3-node NATS cluster
# (Debian's nats-server, MQTT on JetStream), every gateway an `edgevisor
# swarm` of its own that counts what its gateway accepted and what arrived
# upstream. Prints one `name value unit` line per figure.
#
#   harness/scale/run.sh GATEWAYS SENSORS [RATE_HZ] [DURATION] [mosquitto|nats]
#
# Needs a release build (cargo build --release -p edgevisor), mosquitto, and
# for `nats` nats-server 2.9+. Everything runs on 127.0.0.1 on free ports in
# a temporary folder, removed at the end (kept with KEEP=1).
set -euo pipefail
gateways=${1:?gateways}; sensors=${2:?sensors per gateway}
rate=${3:-1}; duration=${4:-60s}; broker=${5:-mosquitto}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${EDGEVISOR_BIN:-$root/target/release/edgevisor}
[ -x "$bin" ] || { echo "no $bin: cargo build --release -p edgevisor" >&2; exit 1; }
work=$(mktemp -d /tmp/edgevisor-scale.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP:-}" = 1 ] && echo "# kept $work" || rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

ports=()
case "$broker" in
  mosquitto)
    p=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' "$p" > "$work/mosquitto.conf"
    mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 & pids+=($!)
    ports=("$p")
    broker_pids=("$!")
    ;;
  nats)
    routes=(); mqtt=(); client=()
    for n in 1 2 3; do routes+=("$(free_port)"); mqtt+=("$(free_port)"); client+=("$(free_port)"); done
    broker_pids=()
    for n in 0 1 2; do
      others=""
      for m in 0 1 2; do [ "$m" = "$n" ] || others+="nats://127.0.0.1:${routes[$m]}, "; done
      mkdir -p "$work/nats$n"
      cat > "$work/nats$n.conf" <<CONF
server_name: n$n
listen: 127.0.0.1:${client[$n]}
jetstream { store_dir: "$work/nats$n" }
cluster { name: edgevisor-scale, listen: 127.0.0.1:${routes[$n]}, routes: [${others%, }] }
mqtt { listen: 127.0.0.1:${mqtt[$n]} }
CONF
      nats-server -c "$work/nats$n.conf" > "$work/nats$n.log" 2>&1 & pids+=($!); broker_pids+=($!)
    done
    ports=("${mqtt[@]}")
    ;;
  *) echo "broker: mosquitto or nats" >&2; exit 2 ;;
esac
# Wait until every MQTT port answers (a NATS cluster elects its JetStream
# leader first).
for p in "${ports[@]}"; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && break; sleep 0.1; done
done
[ "$broker" = nats ] && sleep 5

ulimit -n 65536 2>/dev/null || true
broker_cpu() { local t=0; for b in "${broker_pids[@]}"; do t=$((t + $(awk '{print $14+$15}' /proc/"$b"/stat))); done; echo "$t"; }
cpu0=$(broker_cpu)
started=$(date +%s.%N)
swarms=()
for i in $(seq "$gateways"); do
  port=${ports[$(( (i - 1) % ${#ports[@]} ))]}
  "$bin" swarm --gateway-id "gw-$i" --broker "mqtt://127.0.0.1:$port" \
    --sensors "$sensors" --listen "$sensors" --tcp 0 --serial 0 --mqtt 0 \
    --rate "$rate" --duration "$duration" --faults none --no-flap --seed "$i" \
    --quiet --json "$work/gw-$i.json" > "$work/gw-$i.out" 2>&1 & swarms+=($!)
done
failed=0
for s in "${swarms[@]}"; do wait "$s" || failed=$((failed + 1)); done
ended=$(date +%s.%N)
cpu1=$(broker_cpu)
ticks=$(getconf CLK_TCK)
python3 - "$work" "$gateways" "$sensors" "$rate" "$broker" "$failed" \
  "$(echo "($cpu1 - $cpu0) / $ticks" | bc -l)" "$(echo "$ended - $started" | bc -l)" <<'PY'
import json, sys, glob
work, n, m, rate, broker, failed, broker_cpu, wall = sys.argv[1:]
runs = [json.load(open(f)) for f in sorted(glob.glob(f"{work}/gw-*.json"))]
p = f"scale.{broker}.g{n}.s{m}"
def line(name, value, unit): print(f"{p}.{name} {value:.6g} {unit}")
total = lambda k: sum(r[k] for r in runs)
line("reports", len(runs), "gateways")
line("failed_swarms", int(failed), "gateways")
for k in ("sent", "accepted", "delivered", "lost", "duplicates"):
    line(k, total(k), "readings")
dur = float(runs[0]["duration_s"]) if runs else 0
line("delivered_per_s", total("delivered") / dur if dur else 0, "readings/s")
line("broker_cpu_s", float(broker_cpu), "s")
line("wall_s", float(wall), "s")
cpu = [r["gateway_cpu_s"] / dur for r in runs]
rss = [r["gateway_peak_rss_bytes"] / 2**20 for r in runs]
p99 = [r["latency_p99_ms"] for r in runs if r.get("latency_p99_ms") is not None]
if runs:
    line("gateway_cpu_mean", sum(cpu) / len(cpu), "cores")
    line("gateway_cpu_max", max(cpu), "cores")
    line("gateway_rss_max", max(rss), "MiB")
    line("p99_max", max(p99) if p99 else float("nan"), "ms")
    line("undrained", sum(1 for r in runs if not r.get("drained")), "gateways")
PY
