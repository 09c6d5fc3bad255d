#!/usr/bin/env bash
# The README's first command: installs dependencies (apt-get), builds tern, and runs its main job
# on a built-in local default: a 4-node emulated cluster (network namespaces, 1 Gbit/s links,
# ternd in every node) that
#   1. runs tern's compressed allreduce (fp32, bf16, terngrad, ternary-ef, sign-ef) next to
#      OpenMPI and torch gloo fp32 allreduce on the same links, and prints the side-by-side table;
#   2. trains a 5.3 M-parameter MLP with PyTorch DDP on scikit-learn's digits, one trainer per
#      node: once with gloo fp32 allreduce, once per tern codec through the libtern DDP hook;
#   3. writes a report (Markdown + JSON) and a PNG plot, and tears the cluster down (Ctrl-C too).
# Needs root for the network namespaces (re-runs itself with sudo when it can).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prog=$(basename "$0")
cd "$root"

usage() {
  cat <<EOF
Usage: $prog [options]
  --no-install      skip scripts/install-deps.sh
  --no-build        use the existing build/default
  -n N              nodes (default 4)
  --rate R          link rate (default 1gbit)
  --sizes LIST      allreduce sizes (default 64M)
  --epochs E        training epochs per run (default: train-demo.sh's)
  --skip-bench      only the training part
  --skip-training   only the allreduce part
  --out DIR         results (default build/demo)
  -h, --help
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }

install=1 build=1 n=4 rate=1gbit sizes=64M epochs="" bench=1 training=1 out=$root/build/demo
args=("$@")
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --no-install) install=0; shift ;;
    --no-build) build=0; shift ;;
    --skip-bench) bench=0; shift ;;
    --skip-training) training=0; shift ;;
    -n|--rate|--sizes|--epochs|--out) [ $# -ge 2 ] || die "option $1 needs a value" ;;&
    -n) n=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $n =~ ^[2-9]$ ]] || die "-n must be 2..9"

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "needs root (network namespaces) and sudo is not installed"
  echo "$prog: network namespaces need root: re-running with sudo"
  exec sudo -E "$0" "${args[@]}"
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
started=$(date +%s)

if [ $install -eq 1 ]; then
  step "installing dependencies (Debian packages)"
  scripts/install-deps.sh
fi
if [ $build -eq 1 ]; then
  step "building (preset default)"
  cmake --preset default >/dev/null
  cmake --build --preset default -j "$(nproc)"
fi
bin=$root/build/default/bin
[ -x "$bin/ternd" ] && [ -x "$bin/tern-bench" ] || die "build/default lacks ternd or tern-bench: build first"

mkdir -p "$out"
prefix=demo
cluster_up=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ $cluster_up -eq 1 ]; then
    step "tearing the cluster down"
    scripts/cluster.sh --prefix "$prefix" down || echo "$prog: cluster down failed" >&2
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "emulated cluster: $n nodes, $rate links"
scripts/cluster.sh --prefix "$prefix" down >/dev/null 2>&1 || true  # leftovers of an interrupted run
scripts/cluster.sh --prefix "$prefix" up -n "$n" --rate "$rate"
cluster_up=1

rc=0
if [ $bench -eq 1 ]; then
  step "allreduce: tern's codecs next to OpenMPI and gloo fp32 on the same links"
  scripts/bench-baselines.sh --prefix "$prefix" --sizes "$sizes" --iters 5 --min-iters 3 --warmup 1 --budget 8 \
    --contenders openmpi-ring,gloo,tern-fp32,tern-bf16,tern-terngrad,tern-ternary-ef,tern-sign-ef \
    -o "$out/allreduce.json" || rc=1
  [ -f "$out/allreduce.json" ] && /usr/bin/python3 tools/baselines/report.py --print "$out/allreduce.json" \
    --markdown "$out/allreduce.md" >/dev/null || true
fi

if [ $training -eq 1 ]; then
  step "training: PyTorch DDP on digits, gloo fp32 vs tern's codecs through the libtern hook"
  train_args=(--prefix "$prefix" --build "$root/build/default" --out "$out/training")
  [ -n "$epochs" ] && train_args+=(--epochs "$epochs")
  scripts/train-demo.sh "${train_args[@]}" || rc=1
fi

# One report: the allreduce table, then the training report.
{
  echo "# tern demo: $n emulated nodes, $rate links"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Command: \`scripts/demo.sh ${args[*]}\`"
  if [ -f "$out/allreduce.md" ]; then
    echo; echo "## Allreduce (median per operation)"; echo; cat "$out/allreduce.md"
  fi
  if [ -f "$out/training/report.md" ]; then
    echo; sed 's/^# /## /' "$out/training/report.md"
  fi
} >"$out/report.md"

step "done in $(( $(date +%s) - started )) s"
echo "report:    $out/report.md"
[ -f "$out/allreduce.json" ] && echo "allreduce: $out/allreduce.json"
[ -f "$out/training/report.json" ] && echo "training:  $out/training/report.json"
[ -f "$out/training/training.png" ] && echo "plot:      $out/training/training.png"
exit $rc
