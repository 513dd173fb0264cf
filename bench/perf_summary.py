#!/usr/bin/env python3
"""Summarises a flat CPU profile of FastGate as Markdown tables.

Input: the text of `perf report --no-children --sort comm,dso,sym` (see
bench/profile.sh). Output: the share of samples by category (kernel work split
by thread), by thread, and the top symbols. The categories are matched on
symbol names, so they are approximate: inlined code counts where it landed."""
import re, sys, collections
CATS = [
    ("SQLite (audit rows, WAL)", r"sqlite3|wal|pcache|btree|balance_nonroot|Vdbe"),
    ("kernel: sockets, wake-ups, journal writes (request thread)", r"^\[k\]"),
    ("allocator (mimalloc, libc malloc)", r"^mi_|_mi_|malloc|free|unlink_chunk|_int_"),
    ("memcpy/memcmp (libc)", r"memmove|memcpy|memcmp|memset|strlen"),
    ("hyper (HTTP/1 server and client)", r"hyper|httparse|h2::"),
    ("tokio runtime, timers, channels", r"tokio|mio::|futures_util|futures_core|AtomicWaker|waker|clock_gettime|vdso"),
    ("sqlx (audit batches)", r"sqlx"),
    ("axum/tower routing", r"axum|tower|matchit"),
    ("http/bytes types", r"^http::|bytes::"),
    ("metrics", r"metrics"),
    ("FastGate: audit and store", r"fastgate_audit|fastgate_store|crc32"),
    ("FastGate: request path", r"fastgate|serde_json|uuid|sha2|chrono|governor|subtle|regex|core::fmt|sip::Hasher|hash"),
]
totals = collections.Counter(); threads = collections.Counter(); top = []
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(\S+)\s+(\[.\])\s+(.*)$", line)
    if not m:
        continue
    pct, comm, dso, kind, sym = float(m[1]), m[2], m[3], m[4], m[5].strip()
    threads[comm] += pct
    key = "[k]" if kind == "[k]" else sym
    if kind == "[k]" and comm.startswith("sqlx-sqlite"):
        totals["kernel: the audit database's file writes (SQLite thread)"] += pct
        top.append((pct, comm, sym))
        continue
    for name, pat in CATS:
        if re.search(pat, key if name.startswith("kernel") else sym):
            totals[name] += pct
            break
    else:
        totals["other"] += pct
    top.append((pct, comm, sym))
print("| share of the proxy's CPU | category |\n| ---: | --- |")
for name, pct in totals.most_common():
    print(f"| {pct:.1f}% | {name} |")
print("\n| share | thread |\n| ---: | --- |")
for name, pct in threads.most_common():
    print(f"| {pct:.1f}% | `{name}` |")
print("\n| self | thread | symbol |\n| ---: | --- | --- |")
for pct, comm, sym in sorted(top, reverse=True)[:int(sys.argv[2]) if len(sys.argv) > 2 else 25]:
    s = sym if len(sym) < 110 else sym[:107] + "…"
    print(f"| {pct:.2f}% | `{comm}` | `{s}` |")
