#!/usr/bin/env python3
"""Draws readings per CPU-second against connection count, one line per
forwarder and offered rate, from the `name value unit` lines that
`cargo run --release -p edgevisor-bench -- datapath` prints.

    cargo run --release -p edgevisor-bench -- datapath | tee bench.txt
    python3 bench/plot.py bench.txt            # writes docs/benchmarks.png

Needs matplotlib (`pip install matplotlib`). Lines starting with `#` and
any figure other than `<forwarder>.c<N>.r<R>.readings_per_cpu_s` are
ignored.
"""

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

FIGURE = re.compile(r"^(?P<fw>[a-z_]+)\.c(?P<conns>\d+)\.r(?P<rate>\d+)\.readings_per_cpu_s$")
LABELS = {"edgevisor": "edgevisor (durable outbox)", "floor": "floor", "node_red": "Node-RED 4"}
COLORS = {"edgevisor": "tab:blue", "floor": "tab:gray", "node_red": "tab:red"}
MARKERS = {"edgevisor": "o", "floor": "s", "node_red": "^"}


def read_figures(path):
    """{(forwarder, rate): {connections: readings per CPU-second}}."""
    series = defaultdict(dict)
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) != 3 or line.startswith("#"):
            continue
        m = FIGURE.match(parts[0])
        if m:
            key = (m["fw"], int(m["rate"]))
            series[key][int(m["conns"])] = float(parts[1])
    return series


def main():
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", help="saved output of the datapath bench")
    parser.add_argument("-o", "--output", default=root / "docs" / "benchmarks.png")
    args = parser.parse_args()
    series = read_figures(args.figures)
    if not series:
        sys.exit(f"no *.readings_per_cpu_s figures in {args.figures}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    rates = sorted({rate for _, rate in series})
    for (fw, rate), points in sorted(series.items()):
        conns = sorted(points)
        ax.plot(
            conns,
            [points[c] / 1000 for c in conns],
            color=COLORS.get(fw),
            marker=MARKERS.get(fw, "x"),
            linestyle="-" if rate == rates[0] else "--",
            fillstyle="full" if rate == rates[0] else "none",
            label=f"{LABELS.get(fw, fw)}, {rate // 1000}k/s offered",
        )
    ax.set_xscale("log")
    ticks = sorted({c for points in series.values() for c in points})
    ax.set_xticks(ticks, [f"{c:,}" for c in ticks])
    ax.minorticks_off()
    ax.set_xlabel("TCP connections")
    ax.set_ylabel("readings per CPU-second (thousands)")
    ax.set_title("Forwarder CPU efficiency (higher is better)")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
