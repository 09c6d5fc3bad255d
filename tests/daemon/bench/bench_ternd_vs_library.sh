#!/usr/bin/env bash
# 64 MiB allreduce through ternd vs the library-mode engine (tern-bench) on the same emulated links,
# in one run: scripts/cluster.sh up -n NODES --rate RATE, then
#   1. tern-bench, one rank per node (library mode: the engine inside the trainer process);
#   2. one ternd per node and one trainer per node (tern-ternd-bench trainer, through libtern and
#      the daemon's shared-memory rings; the daemon runs the same engine among the nodes).
# Both use UCX over TCP (UCX_TLS=tcp,self: the namespaces share a kernel, so shared memory would
# bypass the links). Prints rank 0's lines of each. Needs root; a benchmark, not a test.
#
#   tests/daemon/bench/bench_ternd_vs_library.sh BUILD_DIR [NODES=4] [RATE=1gbit] [SIZE=64M] [CODEC=terngrad]
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [NODES] [RATE] [SIZE] [CODEC]}
nodes=${2:-4} rate=${3:-1gbit} size=${4:-64M} codec=${5:-terngrad}
root=$(cd "$(dirname "$0")/../../.." && pwd)
cluster=$root/scripts/cluster.sh
prefix=tdb$$
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "$cluster" --prefix "$prefix" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$cluster" --prefix "$prefix" up -n "$nodes" --rate "$rate" >/dev/null
echo "# $nodes nodes, $rate links, $size $codec; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "## library mode (tern-bench)"
export TERN_ID TERN_BENCH=$build/bin/tern-bench SIZE=$size CODEC=$codec
TERN_ID=$("$TERN_BENCH" --make-unique-id 10.77.0.1:29650)
"$cluster" --prefix "$prefix" each --timeout 300 -- env UCX_TLS=tcp,self bash -c \
  '"$TERN_BENCH" --unique-id "$TERN_ID" --rank "$TERN_NODE" --nranks "$TERN_NODES" --codec "$CODEC" --sizes "$SIZE" -n 7 -w 1' \
  | grep -E "^\[$prefix-n0\]"

echo "## through ternd (tern-ternd-bench trainer, one trainer per node)"
for k in $(seq 0 $((nodes - 1))); do
  "$cluster" --prefix "$prefix" exec "$k" -- env UCX_TLS=tcp,self "$build/bin/ternd" --socket-path "$work/n$k.sock" \
      --advertise-host "10.77.0.$((k + 1))" --ucx-tls tcp,self --log-level "${TERND_LOG_LEVEL:-warn}" >"$work/ternd$k.log" 2>&1 &
  pids+=($!)
done
for k in $(seq 0 $((nodes - 1))); do
  for _ in $(seq 100); do [ -S "$work/n$k.sock" ] && break; sleep 0.1; done
done
export WORK=$work BENCH=$build/bin/tern-ternd-bench
if ! TERN_ID=$("$BENCH" unique-id --socket "$work/n0.sock"); then cat "$work/ternd0.log"; exit 1; fi
"$cluster" --prefix "$prefix" each --timeout 300 -- bash -c \
  '"$BENCH" trainer --socket "$WORK/n$TERN_NODE.sock" --id "$TERN_ID" --rank "$TERN_NODE" --nranks "$TERN_NODES" --local 1 --bytes "$SIZE" --codec "$CODEC" --iters 7 --warmup 1' \
  | grep -E "^\[$prefix-n0\]"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${TERND_LOG_LEVEL:-}" ]; then grep -h "allreduce" "$work"/ternd0.log | tail -4; fi
