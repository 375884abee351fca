#!/usr/bin/env python3
"""Sensors and books for packaging/test/upgrade-under-load.sh.

N TCP connections to a `tcp-listen` sensor, each writing one JSON line
{"conn": i, "n": k} every 1/RATE s. A connection the gateway closes is
opened again at once; a refused connect is counted. A line whose write
failed is written again on the next connection. What arrives upstream is
read with `mosquitto_sub` (QoS 1, telemetry only). Runs until STOP_FILE
exists, waits until nothing new has arrived for 3 s (at most 60 s), then
prints one JSON report: what was written, delivered, refused, and per
gateway boot whether `seq` ran from 1 without a gap.
"""
import argparse
import json
import os
import socket
import subprocess
import threading
import time


def sensor(conn, args, books, lock, stop):
    sock, n = None, 0
    while not stop.is_set():
        if sock is None:
            try:
                sock = socket.create_connection(("127.0.0.1", args.port), timeout=5)
            except ConnectionRefusedError:
                with lock:
                    books["refused"] += 1
                time.sleep(0.05)
                continue
            except OSError as error:
                with lock:
                    books["connect_errors"].append(str(error))
                time.sleep(0.05)
                continue
        line = (json.dumps({"conn": conn, "n": n + 1}) + "\n").encode()
        try:
            sock.sendall(line)
        except OSError:
            sock.close()
            sock = None
            with lock:
                books["reopened"] += 1
            continue
        n += 1
        with lock:
            books["written"].add((conn, n))
        time.sleep(1.0 / args.rate)
    if sock is not None:
        sock.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--broker-port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--stop-file", required=True)
    args = parser.parse_args()

    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(args.broker_port), "-q", "1",
         "-t", "edgevisor/+/telemetry/#", "-F", "%p"],
        stdout=subprocess.PIPE, text=True)
    arrived = []

    def read_upstream():
        for text in sub.stdout:
            arrived.append(text)

    threading.Thread(target=read_upstream, daemon=True).start()
    time.sleep(1)  # subscribed before the first line

    books = {"refused": 0, "reopened": 0, "connect_errors": [], "written": set()}
    lock, stop = threading.Lock(), threading.Event()
    threads = [threading.Thread(target=sensor, args=(i, args, books, lock, stop))
               for i in range(args.connections)]
    for thread in threads:
        thread.start()
    while not os.path.exists(args.stop_file):
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join()

    quiet_since, last, deadline = time.time(), len(arrived), time.time() + 60
    while time.time() - quiet_since < 3 and time.time() < deadline:
        time.sleep(0.5)
        if len(arrived) != last:
            quiet_since, last = time.time(), len(arrived)
    sub.terminate()

    delivered, seqs = set(), {}
    for text in list(arrived):
        envelope = json.loads(text)
        delivered.add((envelope["data"]["conn"], envelope["data"]["n"]))
        seqs.setdefault(envelope["boot"], []).append(envelope["seq"])
    gaps = {boot: sorted(set(range(1, max(s) + 1)) - set(s))[:5]
            for boot, s in seqs.items() if sorted(set(s)) != list(range(1, max(s) + 1))}
    written = books["written"]
    report = {
        "written": len(written),
        "delivered": len(delivered & written),
        "unread": len(written - delivered),
        "refused": books["refused"],
        "reopened": books["reopened"],
        "connect_errors": books["connect_errors"][:5],
        "boots": sorted(seqs),
        "seq_gaps": {str(boot): gap for boot, gap in gaps.items()},
        "duplicates": len(arrived) - len(delivered),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
