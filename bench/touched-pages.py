#!/usr/bin/env python3
"""The functions on the code pages that running edgevisor processes touched.

usage: touched-pages.py BINARY OUT

Polls every 0.1 s, until SIGTERM, each process whose executable is BINARY,
reads which pages of its code mapping are present (/proc/PID/pagemap, needs
root), and on SIGTERM writes to OUT the names of every function of BINARY
(which must have its symbol table) that lies on such a page, one a line.

With read-ahead off and the page cache dropped before each process starts
(bench/hot-symbols.sh does both), a page is present only when the process
itself touched it: the kernel's fault-around maps neighbouring pages only
when they are already cached. Used beside callgrind's list, which sees
every function that ran but under valgrind's timing, not the native one.
"""

import bisect
import os
import signal
import struct
import subprocess
import sys
import time

PAGE = 4096


def code_segments(binary):
    """(file offset, virtual address, size) of each executable LOAD segment."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True)
    segments = []
    for line in out.stdout.splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"] and "E" in fields[6:-1]:
            segments.append((int(fields[1], 16), int(fields[2], 16), int(fields[4], 16)))
    return segments


def functions(binary):
    """Sorted (address, size, name) of the binary's code symbols."""
    out = subprocess.run(["nm", "-S", "-n", "--defined-only", binary], capture_output=True, text=True, check=True)
    found = []
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW":
            found.append((int(fields[0], 16), int(fields[1], 16), fields[3]))
    return found


def present_pages(pid, binary, segments):
    """Virtual addresses (as in the ELF file) of the present code pages."""
    pages = set()
    try:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
            for line in maps:
                fields = line.split()
                if len(fields) < 6 or fields[5] != binary or "x" not in fields[1]:
                    continue
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                offset = int(fields[2], 16)
                pagemap.seek(lo // PAGE * 8)
                entries = pagemap.read((hi - lo) // PAGE * 8)
                for i in range(len(entries) // 8):
                    if struct.unpack_from("<Q", entries, i * 8)[0] >> 63:
                        file_at = offset + i * PAGE
                        for seg_off, seg_va, seg_size in segments:
                            if seg_off < file_at + PAGE and file_at < seg_off + seg_size:
                                pages.add(file_at - seg_off + seg_va)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return pages


def main():
    binary, out = os.path.realpath(sys.argv[1]), sys.argv[2]
    segments = code_segments(binary)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    touched = set()
    while not stop:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.readlink(f"/proc/{pid}/exe") == binary:
                    touched |= present_pages(pid, binary, segments)
            except OSError:
                continue
        time.sleep(0.1)
    funcs = functions(binary)
    starts = [f[0] for f in funcs]
    names = set()
    for page in touched:
        i = max(bisect.bisect_right(starts, page) - 1, 0)
        while i < len(funcs) and funcs[i][0] < page + PAGE:
            if funcs[i][0] + max(funcs[i][1], 1) > page:
                names.add(funcs[i][2])
            i += 1
    with open(out, "w") as f:
        f.write("".join(f"{n}\n" for n in sorted(names)))
    print(f"touched-pages: {len(touched)} pages, {len(names)} functions", file=sys.stderr)


if __name__ == "__main__":
    main()
