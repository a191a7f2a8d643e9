#!/usr/bin/env python3
"""Splits a profile of the Holdspace server into the parts named in
docs/benchmarks.md ("Across loads"), as shares of its samples and as
microseconds per delivery.

    perf record -F 999 --call-graph fp -p <server pid> -o perf.data -- sleep 20
    perf script -i perf.data | python3 docs/bench/where_it_goes.py <server us/delivery>

The server must be built with frame pointers (see "Where the time goes").
Each sample counts once, in the first part whose test its stack meets, in
the order below: a socket writer's `send` counts as sending, not as writing.
"""
import re
import sys

# (part, test on the thread name and the whole stack)
PARTS = [
    ("writer: fsync", lambda t, s: t == "holdspace-write" and "__x64_sys_fsync" in s),
    ("writer: waiting and waking", lambda t, s: t == "holdspace-write"
        and re.search(r"__x64_sys_(futex|clock_nanosleep)", s)),
    ("writer: the rest (SQLite, the index pass)", lambda t, s: t == "holdspace-write"),
    ("kernel: sending frames", lambda t, s: re.search(r"__send|sendto", s)),
    ("workers: parking and waking", lambda t, s: re.search(r"epoll_wait|__x64_sys_futex|futex_wake", s)),
    ("socket writers (user space)", lambda t, s: "write_loop" in s),
    ("session tasks", lambda t, s: re.search(r"SessionTask|hub::", s)),
    ("socket readers (with the kernel's recv)", lambda t, s: re.search(r"connection|recv", s)),
    ("everything else", lambda t, s: True),
]


def stacks(lines):
    """Yields (thread name, frames joined by ';') per sample of `perf script`."""
    thread, frames = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if thread is not None:
                yield thread, ";".join(frames)
            thread, frames = None, []
        elif thread is None:
            thread = line.split()[0]
        else:
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                frames.append(re.sub(r"\+0x[0-9a-f]+ \(.*\)$| \(.*\)$", "", parts[1]))
    if thread is not None:
        yield thread, ";".join(frames)


def main():
    us = float(sys.argv[1])
    counts = {name: 0 for name, _ in PARTS}
    total = 0
    for thread, stack in stacks(sys.stdin):
        total += 1
        for name, test in PARTS:
            if test(thread, stack):
                counts[name] += 1
                break
    print(f"{total} samples, {us} us per delivery")
    for name, _ in PARTS:
        share = counts[name] / total
        print(f"{100 * share:5.1f} %  {share * us:5.2f} us  {name}")


if __name__ == "__main__":
    main()
