#!/usr/bin/python3
"""Combines per-contender allreduce results into one JSON file and prints them side by side.

  report.py --out RESULTS.json --meta META.json NAME=LABEL=FILE [NAME=LABEL=FILE ...]
      builds RESULTS.json (schema below) from META.json (config, host facts, iperf) and each
      contender's result file (the common format below; a missing or unreadable FILE marks the
      contender "failed"), then prints the table
  report.py --print RESULTS.json [--markdown FILE]
      prints the table of an existing results file (and writes it as Markdown to FILE)

With more than four contenders the table has one row per size and contender instead of one
column per contender: time, busbw, bytes one rank sent (fp32 peers: 2(N-1)/N x size, what a ring
sends) and the speedup over the faster of the fp32 peers (OpenMPI, gloo) at that size.

Common per-contender format (what mpi_allreduce -o, gloo_allreduce.py -o and any later
contender, e.g. tern's own benchmark, write):
  {"tool": "...", "nodes": N, "dtype": "float32", "op": "sum", "warmup": W,
   "results": [{"bytes": B, "count": C, "iters": I, "median_ms": M, "min_ms": m, "max_ms": x,
                "algbw_GBps": a, "busbw_GBps": b, "wrong": 0}, ...]}
Combined file: {"schema": "tern-allreduce-bench/1", "config": {...}, "host": {...},
  "iperf": {...} | null, "contenders": [{"name", "label", "status", "tool", "nodes", "results"}]}
Exit status: 1 if a contender failed or reported wrong results.
"""
import json
import sys


def fmt_size(b):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if b >= (1 << shift) and b % (1 << shift) == 0:
            return f"{b >> shift} {unit}iB"
    return f"{b} B"


def fmt_ms(ms):
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


PEERS = ("openmpi-ring", "openmpi-default", "gloo")


def wire_bytes(contender, result, nodes):
    if "wire_bytes" in result:
        return result["wire_bytes"]
    n = contender.get("nodes") or nodes or 1
    return int(result["bytes"] * 2 * (n - 1) / n)


def rows(doc):
    """(size, label, ms, busbw, wire bytes, speedup vs the fastest fp32 peer or None, wrong)."""
    cons = doc.get("contenders", [])
    nodes = doc.get("config", {}).get("nodes")
    sizes = sorted({r["bytes"] for c in cons for r in c.get("results", [])})
    out = []
    for s in sizes:
        peer_ms = [r["median_ms"] for c in cons if c["name"] in PEERS
                   for r in c.get("results", []) if r["bytes"] == s]
        best_peer = min(peer_ms) if peer_ms else None
        for c in cons:
            r = next((r for r in c.get("results", []) if r["bytes"] == s), None)
            if r is None:
                out.append((s, c["label"], None, None, None, None, c.get("status") != "ok"))
                continue
            speedup = best_peer / r["median_ms"] if best_peer and r["median_ms"] > 0 else None
            out.append((s, c["label"], r["median_ms"], r["busbw_GBps"], wire_bytes(c, r, nodes), speedup,
                        r.get("wrong", 0) > 0))
    return out


def print_rows(doc, out=sys.stdout, markdown=False):
    if markdown:
        print("| size | contender | time (ms) | busbw (GB/s) | sent per rank (MB) | speedup vs fastest fp32 peer |", file=out)
        print("|---|---|---|---|---|---|", file=out)
    else:
        print(f"{'size':>9}  {'contender':<16} {'ms':>9} {'busbw GB/s':>11} {'sent/rank MB':>13} {'speedup':>8}", file=out)
    for s, label, ms, busbw, wire, speedup, bad in rows(doc):
        if ms is None:
            cells = (fmt_size(s), label, "failed" if bad else "-", "", "", "")
        else:
            cells = (fmt_size(s), label + (" (WRONG)" if bad else ""), fmt_ms(ms), f"{busbw:.4f}",
                     f"{wire / 1e6:.1f}", f"{speedup:.2f}x" if speedup else "-")
        if markdown:
            print("| " + " | ".join(cells) + " |", file=out)
        else:
            print(f"{cells[0]:>9}  {cells[1]:<16} {cells[2]:>9} {cells[3]:>11} {cells[4]:>13} {cells[5]:>8}", file=out)


def print_table(doc, out=sys.stdout):
    cfg = doc.get("config", {})
    host = doc.get("host", {})
    cons = doc.get("contenders", [])
    print(f"allreduce float32 sum, {cfg.get('nodes')} nodes, rate {cfg.get('rate')} (burst {cfg.get('burst')}); "
          f"median ms and busbw GB/s (= algbw*2(n-1)/n)", file=out)
    print(f"loadavg before: {host.get('loadavg_before', '?')}   after: {host.get('loadavg_after', '?')}", file=out)
    sizes = sorted({r["bytes"] for c in cons for r in c.get("results", [])})
    if len(cons) > 4:
        print_rows(doc, out)
        sizes = []
    w = 22
    head = f"{'size':>9} |" + "|".join(f"{c['label'][:w]:^{w}}" for c in cons)
    sub = f"{'':>9} |" + "|".join(f"{'ms':>10} {'GB/s':>8}   " for _ in cons)
    if sizes:
        print(head, file=out)
        print(sub, file=out)
        print("-" * len(head), file=out)
    for s in sizes:
        cells = []
        for c in cons:
            r = next((r for r in c.get("results", []) if r["bytes"] == s), None)
            if c.get("status") != "ok" and r is None:
                cells.append(f"{'failed':>10} {'':>8}   ")
            elif r is None:
                cells.append(f"{'-':>10} {'':>8}   ")
            else:
                mark = "!" if r.get("wrong", 0) > 0 else " "
                cells.append(f"{fmt_ms(r['median_ms']):>10} {r['busbw_GBps']:>8.4f}{mark}  ")
        print(f"{fmt_size(s):>9} |" + "|".join(cells), file=out)
    bad = [c["name"] for c in cons if c.get("status") != "ok"]
    wrong = [c["name"] for c in cons for r in c.get("results", []) if r.get("wrong", 0) > 0]
    if bad:
        print(f"FAILED: {', '.join(bad)}", file=out)
    if wrong:
        print(f"WRONG RESULTS (marked !): {', '.join(sorted(set(wrong)))}", file=out)
    ip = doc.get("iperf")
    if ip:
        for k, v in ip.items():
            flows = ", ".join(f"{f['src']}->{f['dst']} {f['mbit_s']:.0f}" for f in v)
            print(f"iperf3 {k}: {flows} Mbit/s", file=out)
    return 1 if (bad or wrong) else 0


def combine(out_path, meta_path, specs):
    with open(meta_path) as f:
        doc = json.load(f)
    doc["schema"] = "tern-allreduce-bench/1"
    doc["contenders"] = []
    for spec in specs:
        name, label, path = spec.split("=", 2)
        entry = {"name": name, "label": label, "status": "failed", "results": []}
        try:
            with open(path) as f:
                r = json.load(f)
            entry.update({"status": "ok", "tool": r.get("tool"), "nodes": r.get("nodes"),
                          "warmup": r.get("warmup"), "results": r["results"]})
        except (OSError, ValueError, KeyError) as e:
            entry["error"] = str(e)
        doc["contenders"].append(entry)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return doc


def main(argv):
    if len(argv) >= 2 and argv[0] == "--print":
        with open(argv[1]) as f:
            doc = json.load(f)
        if len(argv) >= 4 and argv[2] == "--markdown":
            with open(argv[3], "w") as md:
                print_rows(doc, md, markdown=True)
        return print_table(doc)
    if len(argv) >= 4 and argv[0] == "--out" and argv[2] == "--meta":
        return print_table(combine(argv[1], argv[3], argv[4:]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
