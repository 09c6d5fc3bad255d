#!/usr/bin/env bash
# ib-bench across the emulated cluster (scripts/cluster.sh): three network namespaces on a bridge,
# UCX over TCP on the shaped veth links.
#  1. bw and lat between node 0 (server) and node 1 (client): rows, and both --json documents
#     valid against the schema;
#  2. all-pairs with an agent on every node: 6 pairs measured, none flagged on equal links;
#  3. node 2's incoming link throttled (tbf on its bridge port) -> all-pairs flags exactly the
#     links into node 2 and exits 6.
set -euo pipefail
# shellcheck source=tests/cluster/common.sh
source "$(dirname "$0")/../cluster/common.sh"
bench=${IB_BENCH:?IB_BENCH must point to the ib-bench binary}
schema=${IB_BENCH_SCHEMA:?IB_BENCH_SCHEMA must point to ib-bench.schema.json}
tag=ibb
netns_preflight "$tag"
reap_stale "$tag"
prefix=$tag$$
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$cluster" --prefix "$prefix" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$cluster" --prefix "$prefix" up -n 3 --rate 1gbit >/dev/null
on() { local k=$1; shift; "$cluster" --prefix "$prefix" exec "$k" -- env UCX_TLS=tcp,self "$@"; }
validate() {
  if /usr/bin/python3 -m jsonschema -i "$1" "$schema" >"$work/v.err" 2>&1; then pass "$2: JSON matches the schema"
  else fail "$2: $(head -c 600 "$work/v.err")"; fi
}

# 1. bw and lat, node 1 -> node 0
for test in bw lat; do
  size=$([ $test = bw ] && echo 1M || echo 64)
  opts=(--sizes "8,$size" -n 200 --warmup 20 --timeout 30 -p 18600 --json)
  on 0 "$bench" "$test" --server "${opts[@]}" >"$work/$test-server.json" 2>"$work/$test-server.err" &
  spid=$!; pids+=($spid)
  rc=0; timeout 90 "$cluster" --prefix "$prefix" exec 1 -- env UCX_TLS=tcp,self "$bench" "$test" 10.77.0.1 "${opts[@]}" \
    >"$work/$test-client.json" 2>"$work/$test-client.err" || rc=$?
  src=0; wait $spid || src=$?
  if [ $rc -ne 0 ] || [ $src -ne 0 ]; then
    fail "$test across namespaces: client $rc ($(cat "$work/$test-client.err")), server $src ($(cat "$work/$test-server.err"))"
    continue
  fi
  validate "$work/$test-client.json" "$test client (n1)"
  validate "$work/$test-server.json" "$test server (n0)"
  summary=$(/usr/bin/python3 - "$work/$test-client.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
lanes = d["transport"]["lanes"]
assert d["peer"].startswith("10.77.0.1:"), d["peer"]
assert any(l.startswith("tcp/eth0") for l in lanes), lanes
r = d["results"][-1]
key = "bw_avg_mbs" if d["command"] == "bw" else "t_typical_us"
assert len(d["results"]) == 2 and r[key] > 0, r
print(f"{d['command']} {r['bytes']} B: {key} {r[key]:.1f} over {', '.join(lanes)}")
PY
) && pass "$summary" || fail "$test client JSON: $(cat "$work/$test-client.json")"
done
# The 1 Gbit/s shaping shows: 1 MiB messages can't beat ~119 MB/s (2^20 B) by much.
bw=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][-1]["bw_avg_mbs"])' "$work/bw-client.json" 2>/dev/null || echo 0)
/usr/bin/python3 -c "import sys; sys.exit(0 if 20 < $bw < 135 else 1)" && pass "bw 1M at the shaped rate: $bw MB/s" || fail "bw 1M $bw MB/s is not near the 1 Gbit/s shaping"

# 2. all-pairs, every link equal
"$cluster" --prefix "$prefix" each --timeout 200 -- env UCX_TLS=tcp,self "$bench" all-pairs --serve -p 18700 --idle-timeout 120 \
  >"$work/agents.log" 2>&1 &
pids+=($!)
hosts=10.77.0.1:18700,10.77.0.2:18700,10.77.0.3:18700
eventually 50 on 0 "$bench" all-pairs --hosts "$hosts" -n 1 -s 4K >/dev/null 2>&1 || true
rc=0; on 0 timeout 120 "$bench" all-pairs --hosts "$hosts" -s 1M -n 100 --threshold 70 --json >"$work/ap.json" 2>"$work/ap.err" || rc=$?
validate "$work/ap.json" "all-pairs (equal links)"
if [ $rc -eq 0 ]; then pass "all-pairs on equal links: no link flagged ($(/usr/bin/python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["median_mbs"],1))' "$work/ap.json") MB/s median)"
else fail "all-pairs on equal links exited $rc: $(cat "$work/ap.err") $(cat "$work/ap.json")"; fi

# 3. throttle the links into node 2 (its bridge port's egress) to 200 Mbit/s
tc qdisc replace dev "$prefix-v2" root tbf rate 200mbit burst 128kb latency 20ms
rc=0; on 0 timeout 120 "$bench" all-pairs --hosts "$hosts" -s 1M -n 100 --threshold 70 --json >"$work/ap2.json" 2>"$work/ap2.err" || rc=$?
flagged=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(sorted(p["from"]+">"+p["to"] for p in d["pairs"] if p["slow"])))' "$work/ap2.json" 2>/dev/null || echo "?")
if [ $rc -eq 6 ] && [ "$flagged" = "10.77.0.1:18700>10.77.0.3:18700 10.77.0.2:18700>10.77.0.3:18700" ]; then
  pass "throttled links into node 2 flagged, exit 6: $flagged"
else
  fail "all-pairs with node 2 throttled: exit $rc, flagged '$flagged': $(cat "$work/ap2.err") $(cat "$work/ap2.json")"
fi
on 0 "$bench" all-pairs --hosts "$hosts" -s 1M -n 100 --threshold 70 >"$work/ap2.txt" 2>&1 || true
grep -q "SLOW   10.77.0.1:18700 -> 10.77.0.3:18700" "$work/ap2.txt" && pass "text report names the slow link" || fail "text: $(cat "$work/ap2.txt")"
finish
