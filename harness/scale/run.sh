#!/usr/bin/env bash
# Scale run (issue 16, docs/scale.md): N gateway processes with M simulated
# TCP sensors each, at R Hz, against one Mosquitto, a 3-node NATS cluster
# (Debian's nats-server, MQTT on JetStream) or a 3-node RabbitMQ cluster
# (Debian's rabbitmq-server 3.10 with its MQTT plugin), every gateway an
# `edgevisor swarm` of its own that counts what its gateway accepted and what
# arrived upstream. Prints one `name value unit` line per figure.
#
#   harness/scale/run.sh GATEWAYS SENSORS [RATE_HZ] [DURATION] [mosquitto|nats|rabbitmq]
#
# Needs a release build (cargo build --release -p edgevisor), mosquitto, for
# `nats` nats-server 2.9+, for `rabbitmq` rabbitmq-server 3.10 (its nodes
# share the system's epmd; a system RabbitMQ on the default ports is left
# alone). Everything runs on 127.0.0.1 on free ports in a temporary folder,
# removed at the end (kept with KEEP=1); gateway i connects to node i mod 3.
# DRAIN=10m lets a run that saturates the machine drain its outboxes
# (the swarms' --drain-timeout, 60 s by default).
set -euo pipefail
gateways=${1:?gateways}; sensors=${2:?sensors per gateway}
rate=${3:-1}; duration=${4:-60s}; broker=${5:-mosquitto}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${EDGEVISOR_BIN:-$root/target/release/edgevisor}
[ -x "$bin" ] || { echo "no $bin: cargo build --release -p edgevisor" >&2; exit 1; }
work=$(mktemp -d /tmp/edgevisor-scale.XXXXXX)
pids=()
rmq_nodes=(); broker_pids=()
cleanup() {
  # RabbitMQ nodes stop cleanly through their CLI (about 3 s each, run side
  # by side); whatever is left of ours is killed by its pid.
  local stops=()
  for n in "${!rmq_nodes[@]}"; do
    timeout 60 rabbitmqctl_on "$n" stop > /dev/null 2>&1 & stops+=($!)
  done
  for s in "${stops[@]}"; do wait "$s" 2>/dev/null || true; done
  for n in "${!rmq_nodes[@]}"; do broker_pids+=($(rmq_beams "$n")); done
  for p in "${pids[@]}" "${broker_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP:-}" = 1 ] && echo "# kept $work" || rm -rf "$work"
}
trap cleanup EXIT
# The environment of RabbitMQ node $1 of this run (its name, the run's
# cookie, no system rabbitmq-env.conf; CLI on an ephemeral port), exported.
rmq_env() {
  export HOME="$work/rabbitmq-home" RABBITMQ_CONF_ENV_FILE="$work/rabbitmq-env.conf" \
    RABBITMQ_NODENAME="${rmq_nodes[$1]}" RABBITMQ_CTL_DIST_PORT_MIN=0 RABBITMQ_CTL_DIST_PORT_MAX=0 \
    RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}
rabbitmqctl_on() {
  (rmq_env "$1"; n=$1; shift; exec /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "${rmq_nodes[$n]}" "$@")
}
# The beam.smp of RabbitMQ node $1, found by the node name in its environment.
rmq_beams() {
  local p
  for p in $(pgrep -x beam.smp || true); do
    tr '\0' '\n' < /proc/"$p"/environ 2>/dev/null | grep -qx "RABBITMQ_NODENAME=${rmq_nodes[$1]}" && echo "$p"
  done
  true
}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

ports=()
case "$broker" in
  mosquitto)
    p=$(free_port)
    # No queue limit: Mosquitto drops QoS 1 messages silently past it, and a
    # counter that fell behind would count them lost (../shared/notes).
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_queued_bytes 0\n' "$p" > "$work/mosquitto.conf"
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
  rabbitmq)
    # Three nodes, each with its own name, ports, folders and config, and one
    # Erlang cookie of their own (HOME); nodes 2 and 3 join node 1. The MQTT
    # plugin's defaults are kept: a QoS 1 subscriber with a clean session (the
    # swarm's counter) gets a classic, non-replicated queue on the node it is
    # connected to; mqtt.durable_queue_type = quorum applies only to sessions
    # that outlast the connection, and no mirroring policy is set. What the
    # cluster shares is metadata: bindings, and client ids through Raft.
    tag=$(python3 -c 'import secrets;print(secrets.token_hex(3))')
    mkdir -p "$work/rabbitmq-home"
    python3 -c 'import secrets;print(secrets.token_hex(16),end="")' > "$work/rabbitmq-home/.erlang.cookie"
    chmod 400 "$work/rabbitmq-home/.erlang.cookie"
    : > "$work/rabbitmq-env.conf"            # not /etc/rabbitmq/rabbitmq-env.conf
    echo '[rabbitmq_mqtt].' > "$work/enabled_plugins"
    mqtt=()
    for n in 0 1 2; do
      rmq_nodes+=("ev$((n + 1))-$tag@localhost"); mqtt+=("$(free_port)")
      mkdir -p "$work/rabbitmq$n"
      printf 'mqtt.listeners.tcp.default = 127.0.0.1:%s\nmqtt.allow_anonymous = true\n' \
        "${mqtt[$n]}" > "$work/rabbitmq$n/rabbitmq.conf"
      (cd "$work" && rmq_env "$n" && exec env RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$(free_port)" RABBITMQ_DIST_PORT="$(free_port)" \
        RABBITMQ_MNESIA_BASE="$work/rabbitmq$n/mnesia" RABBITMQ_LOG_BASE="$work/rabbitmq$n/log" \
        RABBITMQ_CONFIG_FILE="$work/rabbitmq$n/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$work/rabbitmq$n/advanced.config" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$work/enabled_plugins" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        /usr/lib/rabbitmq/bin/rabbitmq-server) > "$work/rabbitmq$n.out" 2>&1 & pids+=($!)
    done
    for n in 0 1 2; do
      for try in $(seq 60); do
        rabbitmqctl_on "$n" await_startup > /dev/null 2>&1 && break
        [ "$try" = 60 ] && { echo "rabbitmq node $n did not start, see $work/rabbitmq$n.out" >&2; KEEP=1; exit 1; }
        sleep 1
      done
      broker_pids+=("$(rabbitmqctl_on "$n" eval 'os:getpid().' | tr -dc 0-9)")
    done
    # (join_cluster logs harmless "Failed to create a tracked connection
    # table" errors in 3.10: the CLI's output goes to a file, shown on failure.)
    for n in 1 2; do
      for step in stop_app "join_cluster ${rmq_nodes[0]}" start_app; do
        # shellcheck disable=SC2086
        rabbitmqctl_on "$n" $step >> "$work/rabbitmq$n.cli" 2>&1 ||
          { cat "$work/rabbitmq$n.cli" >&2; KEEP=1; exit 1; }
      done
    done
    running=$(rabbitmqctl_on 0 eval 'length(rabbit_nodes:all_running()).' | tr -dc 0-9)
    [ "$running" = 3 ] || { echo "rabbitmq: $running of 3 nodes running in the cluster" >&2; KEEP=1; exit 1; }
    ports=("${mqtt[@]}")
    ;;
  *) echo "broker: mosquitto, nats or rabbitmq" >&2; exit 2 ;;
esac
# Wait until every MQTT port answers (a NATS cluster elects its JetStream
# leader first).
for p in "${ports[@]}"; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && break; sleep 0.1; done
done
[ "$broker" = nats ] && sleep 5

ulimit -n 65536 2>/dev/null || true
# utime + stime of the broker processes and of their children (RabbitMQ's
# erl_child_setup), in ticks.
broker_cpu() {
  local t=0 b c
  for b in "${broker_pids[@]}"; do
    for c in "$b" $(pgrep -P "$b" || true); do
      t=$((t + $(awk '{print $14+$15}' /proc/"$c"/stat 2>/dev/null || echo 0)))
    done
  done
  echo "$t"
}
cpu0=$(broker_cpu)
started=$(date +%s.%N)
swarms=()
for i in $(seq "$gateways"); do
  port=${ports[$(( (i - 1) % ${#ports[@]} ))]}
  "$bin" swarm --gateway-id "gw-$i" --broker "mqtt://127.0.0.1:$port" \
    --sensors "$sensors" --listen "$sensors" --tcp 0 --serial 0 --mqtt 0 \
    --rate "$rate" --duration "$duration" --faults none --no-flap --seed "$i" \
    --drain-timeout "${DRAIN:-60s}" --quiet --json "$work/gw-$i.json" > "$work/gw-$i.out" 2>&1 & swarms+=($!)
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
