#!/usr/bin/python3
"""gloo_allreduce: times torch.distributed all_reduce (gloo, float32, sum) over message sizes.

The same measurement and output as mpi_allreduce.c (a baseline next to tern's own benchmark):
each iteration starts after a barrier and is timed on every rank, the iteration's time is the
slowest rank's; per size: median/min/max, algbw = bytes/median, busbw = algbw*2(n-1)/n
(GB/s = 1e9 B/s), #wrong = result elements that differ from the exact sum (all ranks, last
iteration). One process per node; run with /usr/bin/python3 (Debian's python3-torch).

  gloo_allreduce.py [--rank R] [--world N] [--master 10.77.0.1] [--port 29500]
                    [-b MIN] [-e MAX] [-f FACTOR] [-s 256K,1M,...] [-w WARMUP] [-n ITERS]
                    [--min-iters M] [--budget SECONDS] [--json] [-o FILE] [--no-check]

Rank and world size default to $TERN_NODE / $TERN_NODES (set by scripts/cluster.sh each), then
$RANK / $WORLD_SIZE. GLOO_SOCKET_IFNAME defaults to eth0.
"""
import argparse
import datetime
import json
import os
import sys
import time


def parse_size(s):
    s = s.strip()
    mul = 1
    if s[-1:] in "bB" and len(s) > 1 and s[-2:-1] in "kKmMgG":
        s = s[:-1]
    suffix = s[-1:].upper()
    if suffix in ("K", "M", "G"):
        mul = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[suffix]
        s = s[:-1]
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size '{s}' (use e.g. 4096, 256K, 1M, 1G)")
    return int(v * mul)


def env_int(*names, default=None):
    for n in names:
        if os.environ.get(n, "") != "":
            return int(os.environ[n])
    return default


def result_json(nodes, warmup, results):
    return {"tool": "gloo_allreduce", "nodes": nodes, "dtype": "float32", "op": "sum",
            "warmup": warmup, "results": results}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rank", type=int, default=env_int("TERN_NODE", "RANK"))
    ap.add_argument("--world", type=int, default=env_int("TERN_NODES", "WORLD_SIZE"))
    ap.add_argument("--master", default=os.environ.get("MASTER_ADDR", "10.77.0.1"))
    ap.add_argument("--port", type=int, default=env_int("MASTER_PORT", default=29500))
    ap.add_argument("-b", type=parse_size, default=1 << 20)
    ap.add_argument("-e", type=parse_size, default=64 << 20)
    ap.add_argument("-f", type=float, default=4.0)
    ap.add_argument("-s", "--sizes", default=None, help="comma-separated sizes (overrides -b/-e/-f)")
    ap.add_argument("-w", "--warmup", type=int, default=2)
    ap.add_argument("-n", "--iters", type=int, default=20)
    ap.add_argument("--min-iters", type=int, default=3)
    ap.add_argument("--budget", type=float, default=0.0,
                    help="choose the number of timed iterations (min-iters..iters) to take about this many seconds")
    ap.add_argument("--timeout", type=float, default=300.0, help="gloo operation timeout, seconds")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("-o", "--out", default=None, help="also write the JSON to this file (rank 0)")
    ap.add_argument("--no-check", action="store_true")
    a = ap.parse_args()
    if a.rank is None or a.world is None:
        ap.error("rank/world unknown: pass --rank/--world or set TERN_NODE/TERN_NODES (or RANK/WORLD_SIZE)")
    if a.iters < 1 or a.warmup < 0:
        ap.error("-n must be >= 1 and -w >= 0")
    min_iters = max(1, min(a.min_iters, a.iters))
    if a.sizes:
        sizes = [parse_size(x) for x in a.sizes.split(",") if x.strip()]
    else:
        if a.f <= 1 or a.b <= 0:
            ap.error("-f must be > 1 and -b > 0")
        sizes, s = [], float(a.b)
        while s <= a.e + 0.5:
            sizes.append(int(s))
            s *= a.f

    os.environ.setdefault("GLOO_SOCKET_IFNAME", "eth0")
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)  # one process per node on few cores: no intra-op thread pool
    dist.init_process_group("gloo", init_method=f"tcp://{a.master}:{a.port}", rank=a.rank,
                            world_size=a.world, timeout=datetime.timedelta(seconds=a.timeout))
    n, rank = dist.get_world_size(), dist.get_rank()
    if not a.json and rank == 0:
        print(f"# gloo_allreduce: {n} ranks, float32 sum, warmup {a.warmup}, iters {a.iters}"
              + (" (fewer when over budget)" if a.budget > 0 else ""))
        print("# %12s %11s %6s %11s %11s %11s %11s %7s" % ("bytes", "count", "iters", "median_ms", "min_ms",
                                                          "algbw_GB/s", "busbw_GB/s", "#wrong"), flush=True)
    results = []
    for size in sizes:
        count = size // 4
        if count == 0:
            continue
        nbytes = count * 4
        pattern = (torch.arange(count, dtype=torch.int64) % 13 + 1).to(torch.float32)
        src = pattern * float(rank + 1)
        buf = torch.empty_like(src)
        tmax = 0.0
        for _ in range(a.warmup):
            buf.copy_(src)
            dist.barrier()
            t = time.perf_counter()
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            t = time.perf_counter() - t
            tt = torch.tensor([t], dtype=torch.float64)
            dist.all_reduce(tt, op=dist.ReduceOp.MAX)
            tmax = float(tt[0])
        iters = a.iters
        if a.budget > 0 and a.warmup > 0 and tmax > 0:  # tmax is the same on every rank
            iters = int(min(a.iters, max(min_iters, a.budget / tmax)))
        times = torch.zeros(iters, dtype=torch.float64)
        for it in range(iters):
            buf.copy_(src)
            dist.barrier()
            t = time.perf_counter()
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            times[it] = time.perf_counter() - t
        dist.all_reduce(times, op=dist.ReduceOp.MAX)
        wrong = -1
        if not a.no_check:
            expected = pattern * float(n * (n + 1) // 2)
            w = torch.tensor([int((buf != expected).sum())], dtype=torch.int64)
            dist.all_reduce(w, op=dist.ReduceOp.SUM)
            wrong = int(w[0])
        ts = sorted(times.tolist())
        med = ts[iters // 2] if iters % 2 else 0.5 * (ts[iters // 2 - 1] + ts[iters // 2])
        algbw = nbytes / med / 1e9
        busbw = algbw * 2 * (n - 1) / n
        r = {"bytes": nbytes, "count": count, "iters": iters, "median_ms": round(med * 1e3, 4),
             "min_ms": round(ts[0] * 1e3, 4), "max_ms": round(ts[-1] * 1e3, 4),
             "algbw_GBps": round(algbw, 6), "busbw_GBps": round(busbw, 6), "wrong": wrong}
        results.append(r)
        if not a.json and rank == 0:
            print("  %12d %11d %6d %11.3f %11.3f %11.4f %11.4f %7d" % (nbytes, count, iters, med * 1e3, ts[0] * 1e3,
                                                                    algbw, busbw, wrong), flush=True)
        del pattern, src, buf
    dist.barrier()
    dist.destroy_process_group()
    bad = any(r["wrong"] > 0 for r in results)
    if rank == 0:
        doc = result_json(n, a.warmup, results)
        if a.json:
            print(json.dumps(doc, indent=1))
        if a.out:
            with open(a.out, "w") as f:
                json.dump(doc, f, indent=1)
                f.write("\n")
        if bad:
            print("gloo_allreduce: WRONG RESULTS", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
