#!/usr/bin/python3
"""digits_ddp: one PyTorch DDP trainer on scikit-learn's digits, gradients exchanged by gloo or tern.

One process per rank (start one per node of scripts/cluster.sh, or several on one machine).
Every rank uses the same seeds and hyper-parameters, so runs that differ only in --comm/--codec
see the same mini-batches in the same order and start from the same weights.

  --comm gloo          DDP's own path: gloo fp32 allreduce, then divide by the world size (the
                       hook below only adds timing around what DDP does without a hook)
  --comm tern --codec  DDP communication hook sending each gradient bucket through the node's
                       ternd (python/tern/ddp.py); op=mean, key=bucket index

Rank 0 writes one JSON document (--out) with the final test accuracy and loss, per-step training
loss, time per step, time in gradient exchange, and bytes sent on --iface, and (--progress) a
one-line status file updated every step for a progress display.

Rank and world size default to $TERN_NODE / $TERN_NODES (set by scripts/cluster.sh), then
$RANK / $WORLD_SIZE. GLOO_SOCKET_IFNAME defaults to --iface.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The tern package (python/tern) and its compiled module: $PYTHONPATH first, then the source tree.
sys.path.append(os.path.join(HERE, "..", "python"))


def env_int(*names, default=None):
    for n in names:
        if os.environ.get(n, "") != "":
            return int(os.environ[n])
    return default


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--comm", choices=("gloo", "tern"), default="gloo")
    ap.add_argument("--codec", default="terngrad",
                    help="tern codec of both directions: fp32, fp16, bf16, terngrad, ternary-ef, sign-ef")
    ap.add_argument("--gather-codec", default=None, help="allgather-direction codec (default: --codec)")
    ap.add_argument("--rank", type=int, default=env_int("TERN_NODE", "RANK"))
    ap.add_argument("--world", type=int, default=env_int("TERN_NODES", "WORLD_SIZE"))
    ap.add_argument("--local-size", type=int, default=1, help="trainers of the job on this node")
    ap.add_argument("--master", default=os.environ.get("MASTER_ADDR", "10.77.0.1"))
    ap.add_argument("--port", type=int, default=env_int("MASTER_PORT", default=29500))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32, help="mini-batch per rank")
    ap.add_argument("--lr", type=float, default=0.03)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--hidden", type=int, default=2304, help="width of the two hidden layers")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads per rank")
    ap.add_argument("--iface", default=None, help="count bytes sent on this interface (default eth0 if present)")
    ap.add_argument("--tern-socket", default=None, help="ternd's control socket (default $TERN_SOCKET or /run/tern/ternd.sock)")
    ap.add_argument("--tern-timeout-ms", type=int, default=60000, help="per-allreduce deadline")
    ap.add_argument("--corrupt", choices=("none", "zero", "flip"), default="none",
                    help="TEST ONLY: damage the averaged gradient in the hook (zero: scale lost, flip: sign "
                         "flipped) to show that the quality test notices a broken codec")
    ap.add_argument("--timeout", type=float, default=300.0, help="gloo operation timeout, seconds")
    ap.add_argument("--label", default=None, help="run name in the JSON (default: gloo or tern-CODEC)")
    ap.add_argument("-o", "--out", default=None, help="JSON result (rank 0)")
    ap.add_argument("--progress", default=None, help="file rank 0 rewrites every step with a status line")
    a = ap.parse_args(argv)
    if a.rank is None or a.world is None:
        ap.error("rank/world unknown: pass --rank/--world or set TERN_NODE/TERN_NODES (or RANK/WORLD_SIZE)")
    if not 0 <= a.rank < a.world:
        ap.error(f"--rank {a.rank} outside 0..{a.world - 1}")
    if a.local_size < 1 or a.world % a.local_size:
        ap.error(f"--local-size {a.local_size} must divide --world {a.world}")
    if a.epochs < 1 or a.batch < 1:
        ap.error("--epochs and --batch must be >= 1")
    if a.iface is None:
        a.iface = "eth0" if os.path.exists("/sys/class/net/eth0") else ""
    if a.label is None:
        a.label = "gloo" if a.comm == "gloo" else f"tern-{a.codec}"
    return a


def tx_bytes(iface):
    """Bytes sent so far on `iface` in this network namespace (/proc/self/net/dev), or 0."""
    if not iface:
        return 0
    with open("/proc/self/net/dev") as f:
        for line in f:
            name, sep, rest = line.partition(":")
            if sep and name.strip() == iface:
                return int(rest.split()[8])
    raise SystemExit(f"digits_ddp: interface '{iface}' not found in /proc/self/net/dev")


def load_data(seed):
    """Digits (1797 images of 8x8 pixels), 80/20 stratified split; pixels scaled to [0, 1] and centred."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32) / 16.0
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    mean = xtr.mean(axis=0, keepdims=True)
    return (torch.from_numpy(xtr - mean), torch.from_numpy(ytr).long(),
            torch.from_numpy(xte - mean), torch.from_numpy(yte).long())


def make_model(hidden, seed):
    import torch
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10))


class GlooTimedState:
    def __init__(self, world):
        from tern.ddp import ExchangeClock
        self.world = world
        self.clock = ExchangeClock()


def gloo_timed_hook(state, bucket):
    """DDP's default reduction (allreduce sum over the process group, then / world size) with the
    same exchange-time bookkeeping as tern's hook: the window from the first bucket handed over in a
    step to the last bucket's completion."""
    import torch.distributed as dist
    state.clock.bucket_started()
    fut = dist.all_reduce(bucket.buffer(), async_op=True).get_future()

    def finish(f):
        out = f.value()[0].div_(state.world)
        state.clock.bucket_done()
        return out
    return fut.then(finish)


def write_progress(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def median(xs):
    return statistics.median(xs) if xs else 0.0


def train(a):
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(a.threads)
    if a.iface:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", a.iface)
    t_start = time.perf_counter()
    dist.init_process_group("gloo", init_method=f"tcp://{a.master}:{a.port}", rank=a.rank,
                            world_size=a.world, timeout=datetime.timedelta(seconds=a.timeout))
    xtr, ytr, xte, yte = load_data(a.seed)
    model = make_model(a.hidden, a.seed)
    nparams = sum(p.numel() for p in model.parameters())
    ddp = DDP(model)

    tern_state = None
    if a.comm == "gloo":
        gloo_state = GlooTimedState(a.world)
        ddp.register_comm_hook(gloo_state, gloo_timed_hook)
        clock = gloo_state.clock
    else:
        import tern.ddp
        # A fixed group seed: terngrad's stochastic rounding is the same in every run.
        group = tern.ddp.join_group(rank=a.rank, nranks=a.world, local_size=a.local_size,
                                    socket_path=a.tern_socket, seed=a.seed)
        tern_state = tern.ddp.register_tern_hook(ddp, group, codec=a.codec, gather_codec=a.gather_codec,
                                                 timeout_ms=a.tern_timeout_ms, corrupt=a.corrupt)
        clock = tern_state.clock
    opt = torch.optim.SGD(ddp.parameters(), lr=a.lr, momentum=a.momentum)

    # Same shards on every run: a permutation per epoch from the seed, rank r takes every world-th
    # sample; incomplete batches are dropped so that every rank runs the same number of steps.
    per_rank = len(xtr) // a.world
    steps_per_epoch = per_rank // a.batch
    total_steps = steps_per_epoch * a.epochs
    setup_s = time.perf_counter() - t_start
    steps = []
    tx0 = tx_bytes(a.iface)
    t_train = time.perf_counter()
    step = 0
    for epoch in range(a.epochs):
        g = torch.Generator().manual_seed(a.seed * 1000 + epoch)
        perm = torch.randperm(len(xtr), generator=g)[a.rank::a.world][:per_rank]
        for b in range(steps_per_epoch):
            idx = perm[b * a.batch:(b + 1) * a.batch]
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=False)
            loss = F.cross_entropy(ddp(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            step_s = time.perf_counter() - t0
            exch_s = clock.take()
            # The global mean loss for the curve: a 4-byte gloo allreduce outside the timed region.
            lt = loss.detach().reshape(1).clone()
            dist.all_reduce(lt)
            step += 1
            tx = tx_bytes(a.iface) - tx0
            steps.append({"step": step, "epoch": epoch, "loss": float(lt[0]) / a.world,
                          "step_s": step_s, "exchange_s": exch_s, "tx_bytes": tx})
            if a.progress and a.rank == 0:
                write_progress(a.progress, f"step {step}/{total_steps} loss {steps[-1]['loss']:.4f} "
                               f"{step_s * 1e3:.0f} ms/step exchange {exch_s * 1e3:.0f} ms")
    train_s = time.perf_counter() - t_train
    tx_total = tx_bytes(a.iface) - tx0

    model.eval()
    with torch.no_grad():
        logits = model(xte)
        test_loss = float(F.cross_entropy(logits, yte))
        test_acc = float((logits.argmax(dim=1) == yte).float().mean())
        # Every replica must hold the same weights (tern promises bit-identical results).
        digest = torch.stack([p.double().sum() for p in model.parameters()]).sum().reshape(1)
    digests = [torch.zeros(1, dtype=torch.float64) for _ in range(a.world)]
    dist.all_gather(digests, digest)
    identical = all(bool(d[0] == digests[0][0]) for d in digests)
    # Every rank's exchange window per step, gathered after training (no clock sync needed). A
    # rank's window includes waiting for ranks that handed over their buckets later; the smallest
    # window of a step is the exchange as the last rank to arrive saw it, without that wait.
    windows = torch.tensor([s["exchange_s"] for s in steps], dtype=torch.float64)
    all_windows = [torch.zeros_like(windows) for _ in range(a.world)]
    dist.all_gather(all_windows, windows)
    for i, s in enumerate(steps):
        s["exchange_s_last_arrival"] = min(float(w[i]) for w in all_windows)
    if tern_state is not None:
        tern_state.close()
    dist.barrier()
    dist.destroy_process_group()

    # Steady state: the first step also builds DDP's buckets and the tern buffers.
    steady = steps[1:] if len(steps) > 1 else steps
    last_epoch = [s["loss"] for s in steps if s["epoch"] == a.epochs - 1]
    return {
        "label": a.label, "comm": a.comm, "codec": a.codec if a.comm == "tern" else "fp32",
        "gather_codec": (a.gather_codec or a.codec) if a.comm == "tern" else "fp32",
        "corrupt": a.corrupt, "world": a.world, "local_size": a.local_size, "params": nparams,
        "hidden": a.hidden, "epochs": a.epochs, "batch_per_rank": a.batch, "lr": a.lr,
        "momentum": a.momentum, "seed": a.seed, "steps": len(steps), "iface": a.iface,
        "test_accuracy": test_acc, "test_loss": test_loss,
        "final_train_loss": sum(last_epoch) / len(last_epoch),
        "step_s_median": median([s["step_s"] for s in steady]),
        "exchange_s_median": median([s["exchange_s"] for s in steady]),
        "exchange_last_arrival_s_median": median([s["exchange_s_last_arrival"] for s in steady]),
        "step_s_mean": sum(s["step_s"] for s in steady) / len(steady),
        "exchange_s_mean": sum(s["exchange_s"] for s in steady) / len(steady),
        "tx_bytes_per_step": tx_total / max(len(steps), 1),
        "gradient_bytes_per_step": nparams * 4,
        "replicas_identical": identical, "setup_s": setup_s, "train_s": train_s,
        "history": steps,
    }


def main(argv=None):
    a = parse_args(argv)
    # One BLAS thread per rank (several ranks share few cores); set before numpy/torch load BLAS.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(a.threads))
    result = train(a)
    if a.rank == 0:
        r = result
        print(f"digits_ddp {r['label']}: test accuracy {r['test_accuracy'] * 100:.2f} %, test loss "
              f"{r['test_loss']:.4f}, train loss {r['final_train_loss']:.4f}, "
              f"{r['step_s_median'] * 1e3:.1f} ms/step, exchange {r['exchange_s_median'] * 1e3:.1f} ms/step "
              f"({r['exchange_last_arrival_s_median'] * 1e3:.1f} ms for the last rank to arrive), "
              f"{r['tx_bytes_per_step'] / 1e6:.2f} MB sent/step, {r['params']} parameters, {r['steps']} steps",
              flush=True)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(result, f, indent=1)
                f.write("\n")
    if not result["replicas_identical"]:
        print(f"digits_ddp: rank {a.rank}: replicas hold different weights after training", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
