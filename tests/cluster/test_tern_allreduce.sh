#!/usr/bin/env bash
# tern's allreduce across emulated nodes: one tern-bench rank per network namespace, UCX over TCP
# on the shaped veth links.
#  1. every codec, several sizes: each result checked against the reference (tern-bench fails on
#     any #wrong), on every rank;
#  2. a cut link in the middle of an allreduce: the survivors fail with an error naming the cut
#     rank, within the heartbeat timeout (5 s) plus slack, far below the operation deadline (60 s).
set -euo pipefail
# shellcheck source=tests/cluster/common.sh
source "$(dirname "$0")/common.sh"
bench=${TERN_BENCH:?TERN_BENCH must point to the tern-bench binary}
tag=tta
netns_preflight "$tag"
reap_stale "$tag"
prefix=$tag$$
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "$cluster" --prefix "$prefix" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$cluster" --prefix "$prefix" up -n 3 --rate 1gbit >/dev/null

# 1. correctness on every codec
export TERN_ID TERN_BENCH=$bench
TERN_ID=$("$bench" --make-unique-id 10.77.0.1:29611)
if timeout 150 "$cluster" --prefix "$prefix" each --timeout 140 -- env UCX_TLS=tcp,self bash -c \
    '"$TERN_BENCH" --unique-id "$TERN_ID" --rank "$TERN_NODE" --nranks "$TERN_NODES" --codec all --sizes 4,100K,3M -n 2 -w 1 -c 1' \
    >"$work/check" 2>&1; then
  rows=$(grep -cE '^\[[a-z0-9-]+-n0\] +[0-9]+ +[0-9]+ +fp32' "$work/check" || true)
  if [ "$rows" -eq 18 ]; then pass "3 nodes: 6 codecs x 3 sizes, every result equal to the reference"; else
    fail "expected 18 result rows from rank 0, got $rows"; cat "$work/check"; fi
else
  fail "tern-bench across 3 nodes failed"; cat "$work/check"
fi

# 2. a cut link mid-operation
TERN_ID=$("$bench" --make-unique-id 10.77.0.1:29612)
for k in 0 1 2; do
  "$cluster" --prefix "$prefix" exec "$k" -- env UCX_TLS=tcp,self "$bench" --unique-id "$TERN_ID" --rank "$k" --nranks 3 \
    --codec fp32 --sizes 64M -n 100 -w 0 -c 0 --timeout-ms 60000 >"$work/rank$k" 2>&1 &
  pids+=($!)
done
sleep 4  # formed, and inside the 64 MiB allreduces
"$cluster" --prefix "$prefix" cut 2 >/dev/null
cut_at=$(date +%s)
for k in 0 1; do
  rc=0
  timeout 40 tail --pid="${pids[$k]}" -f /dev/null || rc=$?
  elapsed=$(( $(date +%s) - cut_at ))
  status=0
  wait "${pids[$k]}" || status=$?
  if [ "$rc" -ne 0 ]; then
    fail "rank $k still running 40 s after node 2's link was cut"
  elif [ "$status" -eq 0 ]; then
    fail "rank $k finished successfully although rank 2 was cut off"
  elif ! grep -qE "^tern-bench: rank $k: .*rank 2" "$work/rank$k"; then
    fail "rank $k's error does not name rank 2:"; cat "$work/rank$k"
  elif [ "$elapsed" -gt 20 ]; then
    fail "rank $k took ${elapsed} s to fail (heartbeat timeout 5 s)"
  else
    pass "rank $k failed ${elapsed} s after the cut: $(grep -m1 -E "^tern-bench: rank $k: " "$work/rank$k" | cut -c1-200)"
  fi
done
finish
