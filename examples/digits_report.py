#!/usr/bin/python3
"""digits_report: the side-by-side report of digits_ddp.py runs (one JSON file per run).

  digits_report.py RUN.json... [-o DIR] [--title TEXT] [--meta KEY=VALUE ...]

Writes DIR/report.md (a table and the set-up), DIR/report.json (the runs without their step
histories, plus comparisons with the gloo fp32 baseline) and DIR/training.png (training loss vs
step and vs bytes sent, one line per run), and prints the table. The baseline is the run labelled
"gloo" if present, else the first run.
"""
import argparse
import json
import os
import sys


def load(paths):
    runs = []
    for p in paths:
        with open(p) as f:
            runs.append(json.load(f))
    if not runs:
        raise SystemExit("digits_report: no runs given")
    return runs


def compare(runs):
    base = next((r for r in runs if r["label"] == "gloo"), runs[0])
    rows = []
    for r in runs:
        row = {k: r[k] for k in ("label", "comm", "codec", "test_accuracy", "test_loss", "final_train_loss",
                                 "step_s_median", "exchange_s_median", "tx_bytes_per_step", "steps", "params",
                                 "replicas_identical")}
        row["accuracy_delta_points"] = (r["test_accuracy"] - base["test_accuracy"]) * 100
        row["step_speedup"] = base["step_s_median"] / r["step_s_median"] if r["step_s_median"] else None
        row["exchange_speedup"] = (base["exchange_s_median"] / r["exchange_s_median"]
                                   if r["exchange_s_median"] else None)
        # Older run files lack the last-arrival figure.
        row["exchange_last_arrival_s_median"] = r.get("exchange_last_arrival_s_median")
        b, x = base.get("exchange_last_arrival_s_median"), r.get("exchange_last_arrival_s_median")
        row["exchange_last_arrival_speedup"] = b / x if b and x else None
        row["bytes_ratio"] = base["tx_bytes_per_step"] / r["tx_bytes_per_step"] if r["tx_bytes_per_step"] else None
        rows.append(row)
    return base, rows


def fmt_x(v):
    return "-" if v is None else f"{v:.1f}x"


def fmt_ms(seconds):
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"


def table(rows, base_label):
    head = ("| run | test acc % | Δ vs " + base_label + " (points) | test loss | train loss | ms/step | exchange ms/step "
            "| exchange ms/step, last to arrive | MB sent/step | exchange speedup | speedup, last to arrive "
            "| step speedup | less bytes |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        lines.append(f"| {r['label']} | {r['test_accuracy'] * 100:.2f} | {r['accuracy_delta_points']:+.2f} | "
                     f"{r['test_loss']:.4f} | {r['final_train_loss']:.4f} | {r['step_s_median'] * 1e3:.1f} | "
                     f"{r['exchange_s_median'] * 1e3:.1f} | {fmt_ms(r['exchange_last_arrival_s_median'])} | "
                     f"{r['tx_bytes_per_step'] / 1e6:.2f} | {fmt_x(r['exchange_speedup'])} | "
                     f"{fmt_x(r['exchange_last_arrival_speedup'])} | {fmt_x(r['step_speedup'])} | "
                     f"{fmt_x(r['bytes_ratio'])} |")
    return "\n".join(lines)


def plot(runs, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in runs:
        h = r["history"]
        steps = [s["step"] for s in h]
        loss = [s["loss"] for s in h]
        mb = [s["tx_bytes"] / 1e6 for s in h]
        style = "--" if r["label"] == "gloo" else "-"
        ax1.plot(steps, loss, style, label=r["label"], linewidth=1.3)
        ax2.plot(mb, loss, style, label=r["label"], linewidth=1.3)
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss (mean over ranks)")
    ax1.set_yscale("log")
    ax2.set_xlabel("MB sent by node 0 (cumulative)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="JSON files written by digits_ddp.py -o")
    ap.add_argument("-o", "--out-dir", default=".")
    ap.add_argument("--title", default="PyTorch DDP on digits: gloo fp32 vs tern codecs")
    ap.add_argument("--meta", action="append", default=[], help="KEY=VALUE recorded in the report (repeatable)")
    a = ap.parse_args(argv)
    runs = load(a.runs)
    meta = {}
    for kv in a.meta:
        k, sep, v = kv.partition("=")
        if not sep:
            ap.error(f"--meta wants KEY=VALUE, not '{kv}'")
        meta[k] = v
    base, rows = compare(runs)
    os.makedirs(a.out_dir, exist_ok=True)
    r0 = runs[0]
    setup = (f"{r0['world']} ranks ({r0['local_size']} per node), MLP 64-{r0['hidden']}-{r0['hidden']}-10 "
             f"({r0['params']:,} parameters, {r0['params'] * 4 / 1e6:.1f} MB of fp32 gradients per step), "
             f"{r0['epochs']} epochs x {r0['steps'] // r0['epochs']} steps, batch {r0['batch_per_rank']} per rank, "
             f"SGD lr {r0['lr']} momentum {r0['momentum']}, seed {r0['seed']}")
    tab = table(rows, base["label"])
    notes = ("ms/step and exchange ms/step are medians over the steps after the first. The exchange is the window "
             "from the first gradient bucket handed to the communication hook to the last bucket's completion, on rank 0; "
             "it includes waiting for ranks whose backward pass ran late (here 4 nodes share 2 cores, so their "
             "compute drifts apart by tens of ms). \"Last to arrive\": per step, the smallest window over the "
             "ranks, i.e. the exchange as the rank that handed over its first bucket last saw it, without that "
             "wait; gathered after training, no clock synchronization needed. "
             f"MB sent/step: bytes node 0 sent on {r0['iface'] or '(no interface)'} during training, divided by the "
             "steps (for tern: ternd's inter-node traffic).")
    with open(os.path.join(a.out_dir, "report.md"), "w") as f:
        f.write(f"# {a.title}\n\n{setup}.\n\n")
        for k, v in meta.items():
            f.write(f"- {k}: {v}\n")
        if meta:
            f.write("\n")
        f.write(tab + "\n\n" + notes + "\n\n![training loss](training.png)\n")
    with open(os.path.join(a.out_dir, "report.json"), "w") as f:
        json.dump({"title": a.title, "setup": setup, "meta": meta, "baseline": base["label"], "runs": rows}, f,
                  indent=1)
        f.write("\n")
    plot(runs, os.path.join(a.out_dir, "training.png"), a.title)
    print(setup)
    print(tab)
    bad = [r["label"] for r in rows if not r["replicas_identical"]]
    if bad:
        print(f"digits_report: replicas differ in: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
