#!/usr/bin/env python3
"""CPU an edgevisor gateway spends accepting, then closing, N connections.

Usage: bench/accept-churn.py BINARY [N]   (N defaults to 10,000)

Starts a private Mosquitto and the gateway (one `tcp-listen` sensor, JSON
lines) on free ports in a temporary folder, opens N connections that each
send one reading, waits, closes them all, and prints the gateway's CPU
(`/proc/PID/stat`, user + system) for each phase as `name value unit`
lines. Needs `mosquitto` on PATH and an open-files limit above N.
"""
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = tempfile.mkdtemp(prefix="accept-churn-")
    broker_port, sensor_port = free_port(), free_port()
    with open(f"{work}/mosquitto.conf", "w") as f:
        f.write(f"listener {broker_port} 127.0.0.1\nallow_anonymous true\n")
    with open(f"{work}/edgevisor.toml", "w") as f:
        f.write(
            f"""[gateway]
id = "churn"
state_dir = "{work}/state"
[upstream]
url = "mqtt://127.0.0.1:{broker_port}"
[[sensor]]
id = "load"
transport = "tcp-listen"
listen = "127.0.0.1:{sensor_port}"
codec = "json"
max_connections = {n + 64}
read_timeout = "1h"
"""
        )
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    broker = subprocess.Popen(["mosquitto", "-c", f"{work}/mosquitto.conf"], **quiet)
    time.sleep(0.3)
    gateway = subprocess.Popen([binary, "run", "--config", f"{work}/edgevisor.toml"], **quiet)
    try:
        time.sleep(1.5)
        before = cpu_seconds(gateway.pid)
        sockets = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", sensor_port))
            s.sendall(b'{"v":1}\n')
            sockets.append(s)
        time.sleep(3)
        accepted = cpu_seconds(gateway.pid)
        for s in sockets:
            s.close()
        time.sleep(3)
        closed = cpu_seconds(gateway.pid)
        print(f"churn.connections {n} connections")
        print(f"churn.accept_cpu_s {accepted - before:.2f} s")
        print(f"churn.accept_cpu_per_connection {(accepted - before) / n * 1e6:.0f} us")
        print(f"churn.close_cpu_s {closed - accepted:.2f} s")
    finally:
        gateway.terminate()
        gateway.wait()
        broker.terminate()
        broker.wait()


if __name__ == "__main__":
    main()
