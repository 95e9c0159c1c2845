#!/usr/bin/env python3
"""Attributes the samples of a `perf script` output (scripts/profile.sh writes perf.txt) to code.

    scripts/perf-attr.py perf.txt tasks            # share of samples per Tokio task / thread root
    scripts/perf-attr.py perf.txt below PATTERN    # named functions under frames matching PATTERN (inclusive)
    scripts/perf-attr.py perf.txt callers PATTERN  # the ipechain code that called frames matching PATTERN
    scripts/perf-attr.py perf.txt leaves           # self time per function

Frame names have their generic parameters removed first: type names such as `FileBlockStore` appear inside
the parameters of unrelated frames and would attribute samples to the wrong code. PATTERN is a Python regular
expression matched against those cleaned names. Shares are of all samples in the file.
"""
import collections
import re
import signal
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the output quietly

# Crates whose functions name the work (a sample is attributed to the first of them from the thread's root).
OURS = re.compile(
    r"^(peer|orderer|ledger_client|ledger_rpc|ledger_store|ledger_types|msp|bridge|cse|lwm2m_server|lwm2m_sim|"
    r"network|ipechain|ipe|contract|coap|onem2m|fabric_protos|ops|bench|shim|redb|openraft)::"
)
TRANSPORT = re.compile(r"^(tonic::transport::server|hyper::proto|h2::proto::connection)")
NAMED = re.compile(r"^[a-z_0-9]+::")
RUNTIME = re.compile(r"^(core|alloc|std|tokio)::")


def strip_generics(f):
    out, depth = [], 0
    for ch in f:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


INNER = re.compile(
    r"(?:peer|orderer|ledger_client|ledger_store|bridge|cse|lwm2m_server|network|ipechain|msp)::[A-Za-z_0-9:{}#]+"
)


def clean(frame):
    """`name+0x.. (dso)` or `name+0x.. (inlined)` → name without generic parameters; `<T as Trait>::f` → `T::f`.

    A frame that names none of our functions but carries one in its generic parameters (a Tokio task or a
    blocking closure: `poll<orderer::raft::log_store::write::{async_fn#0}...>`) keeps that path in brackets.
    """
    f = re.sub(r"\+0x[0-9a-f]+.*$", "", frame).strip()
    m = re.match(r"^<(.+?) as .*?>(::.*)$", f)
    name = strip_generics(m.group(1)) + strip_generics(m.group(2)) if m else strip_generics(f)
    if not OURS.match(name) and "<" in f:
        inner = INNER.search(f)
        if inner:
            name = f"{name} [{inner.group(0)}]"
    return name


def samples(path):
    """Yields each sample's frames, leaf first, cleaned."""
    stack = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if stack:
                    yield stack
                stack = []
            elif line[0] in "\t ":
                parts = line.strip().split(" ", 1)
                if len(parts) == 2:
                    stack.append(clean(parts[1]))
    if stack:
        yield stack


def report(counter, total, n=40):
    for key, v in counter.most_common(n):
        print(f"{100 * v / max(total, 1):5.1f}%  {key}")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    path, mode = sys.argv[1], sys.argv[2]
    pat = re.compile(sys.argv[3]) if len(sys.argv) > 3 else None
    if mode in ("below", "callers") and pat is None:
        sys.exit(f"{mode} needs a PATTERN")
    counter, total, matched = collections.Counter(), 0, 0
    for frames in samples(path):
        total += 1
        if mode == "tasks":
            root_first = list(reversed(frames))
            key = next((f for f in root_first if OURS.match(f)), None)
            key = key or next((f for f in root_first if TRANSPORT.match(f)), None)
            key = key or next((f for f in root_first if " [" in f), None)
            if key is None:
                blocking = any("blocking::pool" in f for f in frames)
                key = "(tokio blocking pool, no named frame)" if blocking else "(other: " + frames[-1][:40] + ")"
            counter[key[:100]] += 1
        elif mode == "leaves":
            counter[frames[0][:100]] += 1
        elif mode == "below":
            idx = [i for i, f in enumerate(frames) if pat.search(f)]
            if not idx:
                continue
            matched += 1
            seen = set()
            for f in frames[: idx[-1]]:
                if NAMED.match(f) and not RUNTIME.match(f) and f not in seen:
                    seen.add(f)
                    counter[f[:100]] += 1
        elif mode == "callers":
            idx = [i for i, f in enumerate(frames) if pat.search(f)]
            if not idx:
                continue
            matched += 1
            caller = next(
                (f for f in frames[idx[0] + 1 :] if (OURS.match(f) or " [" in f) and not pat.search(f)), "?"
            )
            counter[caller[:100]] += 1
        else:
            sys.exit(f"unknown mode {mode}")
    print(f"{total} samples" + (f", {matched} matching" if pat is not None else ""))
    report(counter, total)


if __name__ == "__main__":
    main()
