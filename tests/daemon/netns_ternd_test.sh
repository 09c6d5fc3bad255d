#!/usr/bin/env bash
# ternd across an emulated cluster (scripts/cluster.sh): one ternd in every node's namespace, two
# trainer processes per node (tern_test_trainer, through libtern), UCX over the shaped veth links.
#  1. 3 nodes x 2 trainers, two codec pairs: every trainer's results equal
#     hierarchical_reference (--verify) and are byte-identical across all six trainers;
#  2. a trainer on node 2 dies before its second allreduce: every other trainer (also on nodes 0
#     and 1) fails with a peer failure that says who left, long before the operation deadline;
#  3. SIGTERM stops every ternd cleanly (exit 0) within seconds.
set -euo pipefail
source "$(dirname "$0")/../cluster/common.sh"
ternd=${TERND:?TERND must point to the ternd binary}
trainer=${TERN_TEST_TRAINER:?TERN_TEST_TRAINER must point to tern_test_trainer}
tag=tdm
netns_preflight "$tag"
reap_stale "$tag"
prefix=$tag$$
work=$(mktemp -d)
chmod 755 "$work"
daemon_pids=()
cleanup() {
  for p in "${daemon_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "$cluster" --prefix "$prefix" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
nodes=3
"$cluster" --prefix "$prefix" up -n $nodes --rate 1gbit >/dev/null

for k in $(seq 0 $((nodes - 1))); do
  "$cluster" --prefix "$prefix" exec "$k" -- "$ternd" --socket-path "$work/n$k.sock" \
      --advertise-host "10.77.0.$((k + 1))" --ucx-tls tcp,self --heartbeat-interval-ms 200 \
      --heartbeat-timeout-ms 2000 --log-level info >"$work/ternd$k.log" 2>&1 &
  daemon_pids+=($!)
done
deadline=$((SECONDS + 20))
for k in $(seq 0 $((nodes - 1))); do
  until [ -S "$work/n$k.sock" ]; do
    if [ $SECONDS -ge $deadline ]; then fail "ternd on node $k did not start"; cat "$work/ternd$k.log"; exit 1; fi
    sleep 0.1
  done
done
pass "a ternd serves in each of the $nodes namespaces"

# run_group NAME ITERS EXTRA_FOR_RANK5 TRAINER_ARGS... : 2 trainers per node, waits for all
run_group() {
  local name=$1 iters=$2 extra5=$3; shift 3
  local id pids=()
  id=$("$trainer" --socket "$work/n0.sock" --print-unique-id 1)
  for r in $(seq 0 $((2 * nodes - 1))); do
    local k=$((r / 2)) more=()
    if [ "$r" -eq 5 ] && [ -n "$extra5" ]; then more=(--exit-before "$extra5"); fi
    "$cluster" --prefix "$prefix" exec "$k" -- "$trainer" --socket "$work/n$k.sock" --id "$id" --rank "$r" \
        --nranks $((2 * nodes)) --local 2 --iters "$iters" --count 300000 --timeout-ms 60000 "$@" "${more[@]}" \
        --out "$work/$name.$r" &
    pids+=($!)
  done
  local st=0
  for p in "${pids[@]}"; do wait "$p" || st=1; done
  return $st
}

# 1. correctness
for codecs in "3 3" "4 2"; do
  set -- $codecs
  if run_group "c$1$2" 2 "" --scatter "$1" --gather "$2" --op 1 --verify 1; then
    same=1
    for r in 1 2 3 4 5; do cmp -s "$work/c$1$2.0" "$work/c$1$2.$r" || same=0; done
    if [ $same -eq 1 ]; then pass "codecs $1/$2: 6 trainers on 3 nodes equal the reference, bit-identical";
    else fail "codecs $1/$2: trainers' results differ"; fi
  else
    fail "codecs $1/$2: a trainer failed"; head -c 400 "$work"/c$1$2.* || true
  fi
done

# 2. a trainer dies
start=$SECONDS
run_group crash 3 2 --scatter 3 --gather 3 || true
elapsed=$((SECONDS - start))
for r in 0 1 2 3 4; do
  out=$(head -c 600 "$work/crash.$r" 2>/dev/null || true)
  case $out in
    *"error peer failure: allreduce 2"*left*) ;;
    *) fail "rank $r after rank 5 died: $out" ;;
  esac
done
echo "  rank 0 says: $(head -c 300 "$work/crash.0")"
grep -q "rank 5 on host $prefix-n2 left" "$work/crash.4" && pass "the node-local survivor names 'rank 5 on host $prefix-n2'" \
  || fail "rank 4's error does not name rank 5 on host $prefix-n2: $(cat "$work/crash.4")"
if [ $elapsed -lt 30 ]; then pass "every survivor failed within ${elapsed} s (deadline 60 s)"; else fail "survivors took ${elapsed} s"; fi

# 3. clean stop
for p in "${daemon_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for i in "${!daemon_pids[@]}"; do
  if timeout 10 tail --pid="${daemon_pids[$i]}" -f /dev/null; then wait "${daemon_pids[$i]}" && st=0 || st=$?
    [ $st -eq 0 ] && pass "ternd on node $i stopped cleanly on SIGTERM" || fail "ternd on node $i exited $st"
  else fail "ternd on node $i did not stop within 10 s"; fi
done
daemon_pids=()
finish
