#!/usr/bin/env bash
# Smoke test of scripts/bench-baselines.sh: 2 nodes, 1 MiB, 3 iterations of OpenMPI (default,
# ring) and gloo; checks the results JSON (every contender ok, positive times no faster than
# the 1 Gbit/s links allow, #wrong 0). Then kills a second run mid-way and checks that it
# removed its cluster and processes. Exit 77: SKIP (no root / no network namespaces).
# shellcheck disable=SC2015  # "COND && pass || fail": pass only echoes
set -euo pipefail
# shellcheck source=tests/cluster/common.sh
source "$(dirname "$0")/common.sh"

tag=ttb
netns_preflight "$tag$$"
reap_stale "$tag"
reap_stale ttk
P=$tag$$ K=ttk$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tern-test-baselines.XXXXXX")
bp=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$bp" ]; then kill -TERM "$bp" 2>/dev/null || true; wait "$bp" 2>/dev/null || true; fi
  "$cluster" --prefix "$P" down >/dev/null 2>&1 || true
  "$cluster" --prefix "$K" down >/dev/null 2>&1 || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start=$(date +%s)
export TERN_BASELINES_BUILD_DIR=${TERN_BASELINES_BUILD_DIR:-$tmp/build}

# --- a small run ------------------------------------------------------------------------------
rc=0
"$root/scripts/bench-baselines.sh" -n 2 --rate 1gbit --sizes 1M --iters 3 --min-iters 3 --warmup 1 \
  --prefix "$P" --timeout 60 -o "$tmp/results.json" || rc=$?
[ $rc -eq 0 ] && pass "bench-baselines -n 2 --sizes 1M exited 0" || fail "bench-baselines exited $rc"
if [ -f "$tmp/results.json" ]; then
  if /usr/bin/python3 - "$tmp/results.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = []
names = [c["name"] for c in d["contenders"]]
if names != ["openmpi-default", "openmpi-ring", "gloo"]:
    bad.append(f"contenders {names}")
if d["config"]["nodes"] != 2 or not d["host"]["loadavg_before"]:
    bad.append("config/host")
for c in d["contenders"]:
    rs = c["results"]
    if c["status"] != "ok" or len(rs) != 1:
        bad.append(f"{c['name']}: status {c['status']}, {len(rs)} results")
        continue
    r = rs[0]
    # 1 MiB over 1 Gbit/s links: each node sends >= 1 MiB in a 2-node allreduce (~8 ms at the
    # rate, less what the 128 kB burst flatters), so >= 4 ms; far above: something is wrong.
    ok = (r["bytes"] == 1 << 20 and r["iters"] == 3 and r["wrong"] == 0
          and 4.0 <= r["median_ms"] <= 2000 and 0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"]
          and r["busbw_GBps"] > 0 and abs(r["busbw_GBps"] - r["algbw_GBps"]) < 1e-9)
    print(f"  {c['name']}: median {r['median_ms']} ms, busbw {r['busbw_GBps']} GB/s, #wrong {r['wrong']}")
    if not ok:
        bad.append(f"{c['name']}: {r}")
if bad:
    sys.exit("bad results: " + "; ".join(bad))
PY
  then pass "results JSON: 3 contenders, sane times, #wrong 0"
  else fail "results JSON check"; fi
else fail "no results file"; fi
left=$(leftovers "$P")
[ -z "$left" ] && pass "the cluster it created is gone" || fail "left behind: $left"

# --- killed mid-run: cleans up ----------------------------------------------------------------
"$root/scripts/bench-baselines.sh" -n 2 --sizes 64M --iters 50 --min-iters 50 --budget 0 \
  --contenders openmpi-ring --prefix "$K" --timeout 60 -o "$tmp/killed.json" >"$tmp/killed.log" 2>&1 &
bp=$!
ranks_running() { [ -n "$(ip netns pids "$K-n1" 2>/dev/null)" ]; }
if eventually 300 ranks_running; then
  sleep 0.5
  kill -TERM "$bp"
  gone() { ! kill -0 "$bp" 2>/dev/null; }
  if eventually 200 gone; then
    rc=0; wait "$bp" || rc=$?; bp=""
    [ $rc -ne 0 ] && pass "killed bench-baselines exited ($rc)" || fail "killed bench-baselines exited 0"
  else fail "bench-baselines did not exit within 20 s of SIGTERM"; fi
  left=$(leftovers "$K")
  [ -z "$left" ] && pass "killed bench-baselines removed its cluster" || fail "killed bench-baselines left: $left"
  strays=$(pgrep -f "$TERN_BASELINES_BUILD_DIR/mpi_allreduce" || true)
  [ -z "$strays" ] && pass "no MPI ranks left running" || fail "ranks left running: $strays"
else
  fail "second bench-baselines never started its ranks: $(tail -5 "$tmp/killed.log")"
fi

echo "test_baselines: $(( $(date +%s) - start )) s"
finish
