#!/usr/bin/env bash
# fp32 allreduce baselines on the emulated cluster (scripts/cluster.sh): OpenMPI (ob1 default
# and ring) and torch.distributed gloo, one process per node, side by side.
#
# Contenders are functions "contender_<name>" (dashes become underscores) that take one argument,
# the path of a JSON file to write in the common format (see tools/baselines/report.py), and
# return non-zero on failure. To add a column (e.g. tern's own benchmark), write
# contender_tern() { ... --json-out "$1" ...; }, give it a label in CONTENDER_LABEL and add it to
# DEFAULT_CONTENDERS (or pass --contenders ...,tern).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/scripts/cluster.sh
prog=$(basename "$0")

declare -A CONTENDER_LABEL=(
  [openmpi-default]="OpenMPI ob1 default"
  [openmpi-ring]="OpenMPI ring"
  [gloo]="torch gloo"
  [tern-fp32]="tern fp32"
  [tern-bf16]="tern bf16"
  [tern-terngrad]="tern terngrad"
  [tern-ternary-ef]="tern ternary-ef"
  [tern-sign-ef]="tern sign-ef"
)
DEFAULT_CONTENDERS=openmpi-default,openmpi-ring,gloo

usage() {
  cat <<EOF
Usage: $prog [options]
  -n N              nodes (default 4; with a running cluster: its size)
  --rate R          link rate for a new cluster (default 1gbit), --burst B (default 128kb)
  --sizes LIST      message sizes in bytes, K/M/G suffixes (default 256K,1M,16M,64M,256M)
  --iters N         at most N timed iterations per size (default 20)
  --min-iters M     at least M (default 5); between the two, as many as fit in --budget
  --budget S        seconds of timed iterations per size and contender (default 10; 0: always N)
  --warmup W        untimed iterations per size (default 2)
  --contenders L    comma-separated, from: ${!CONTENDER_LABEL[*]} (default $DEFAULT_CONTENDERS)
  --iperf           also measure 1 flow (n0->n1) and a ring of N flows with iperf3 (3 s each)
  --prefix P        cluster prefix (default tern); a running cluster with it is used as is,
                    otherwise one is created and removed at exit
  --timeout S       per-contender time limit in seconds (default 1200)
  --wait-idle S     first wait up to S seconds for the 1-minute load average to drop below 0.5
  -o, --out FILE    results JSON (default build/baselines/results-DATE.json)
  -h, --help
Prints a table (median ms, busbw GB/s per contender) and writes all numbers as JSON.
Exit status: non-zero if a contender failed or reported wrong results. Needs root.
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }

cmdline=$(printf '%q ' "$0" "$@"); cmdline=${cmdline% }
n="" rate=1gbit burst=128kb sizes=256K,1M,16M,64M,256M iters=20 min_iters=5 budget=10 warmup=2
contenders=$DEFAULT_CONTENDERS do_iperf=0 prefix=tern timeout_s=1200 wait_idle=0 out=""
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help|--iperf) ;;
    -*) [ $# -ge 2 ] || die "option $1 needs a value" ;;
  esac
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n) n=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --burst) burst=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --min-iters) min_iters=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --contenders) contenders=$2; shift 2 ;;
    --iperf) do_iperf=1; shift ;;
    --prefix) prefix=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --wait-idle) wait_idle=$2; shift 2 ;;
    -o|--out) out=$2; shift 2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces); run as root"
[ -z "$n" ] || [[ $n =~ ^[0-9]+$ && $n -ge 2 ]] || die "-n must be >= 2"
for v in iters min_iters warmup timeout_s wait_idle; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "--${v//_/-} must be a whole number"
done
[ "$min_iters" -le "$iters" ] || min_iters=$iters
IFS=, read -r -a contender_list <<<"$contenders"
for c in "${contender_list[@]}"; do
  [ -n "${CONTENDER_LABEL[$c]:-}" ] || die "unknown contender '$c' (known: ${!CONTENDER_LABEL[*]})"
done

build=${TERN_BASELINES_BUILD_DIR:-$root/build/baselines}   # mpi_allreduce binary, default results
mkdir -p "$build"
[ -n "$out" ] || out=$build/results-$(date +%Y%m%d-%H%M%S).json
work=$(mktemp -d "${TMPDIR:-/tmp}/tern-bench.XXXXXX")

# ---- cleanup: stop what we started, remove the cluster if we created it -----------------------
created=0 child=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$child" ]; then kill -TERM -- "-$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  if [ $created -eq 1 ]; then "$cluster" --prefix "$prefix" down >/dev/null 2>&1 || echo "$prog: cluster down failed" >&2; fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs "$@" in its own process group, bounded by --timeout; a signal to us stops the whole group.
run_bounded() {
  setsid -w timeout -k 10 "$timeout_s" "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=""
  return $rc
}

# ---- cluster ----------------------------------------------------------------------------------
if "$cluster" --prefix "$prefix" info >"$work/state" 2>/dev/null; then
  cn=$(sed -n 's/^N=//p' "$work/state")
  [ -z "$n" ] || [ "$n" = "$cn" ] || die "cluster '$prefix' is running with $cn nodes, not $n: use -n $cn, another --prefix, or '$cluster --prefix $prefix down'"
  n=$cn
  rate=$(sed -n 's/^RATE=//p' "$work/state") burst=$(sed -n 's/^BURST=//p' "$work/state")
  echo "$prog: using running cluster '$prefix' ($n nodes, rate $rate)"
else
  n=${n:-4}
  created=1
  "$cluster" --prefix "$prefix" up -n "$n" --rate "$rate" --burst "$burst"
fi
hosts=$(for ((k = 1; k <= n; k++)); do printf '10.77.0.%d,' "$k"; done)
hosts=${hosts%,}
common=(-s "$sizes" -w "$warmup" -n "$iters" --min-iters "$min_iters" --budget "$budget")

# ---- contenders -------------------------------------------------------------------------------
mpi_bin=""
run_openmpi() {  # run_openmpi OUT [extra mpirun args...]
  local res=$1; shift
  [ -n "$mpi_bin" ] || mpi_bin=$("$root/tools/baselines/build.sh" "$build")
  run_bounded "$cluster" --prefix "$prefix" exec 0 -- \
    env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_assume_same_shell=1 \
    mpirun --allow-run-as-root -np "$n" -H "$hosts" --map-by node --bind-to none \
      --mca plm_rsh_agent "$root/scripts/lib/netns-rsh.sh" --mca plm_rsh_no_tree_spawn 1 \
      --mca oob_tcp_if_include 10.77.0.0/24 --mca pml ob1 --mca btl tcp,self \
      --mca btl_tcp_if_include 10.77.0.0/24 --mca mpi_yield_when_idle 1 "$@" \
      "$mpi_bin" "${common[@]}" -o "$res"
}
contender_openmpi_default() { run_openmpi "$1"; }
contender_openmpi_ring() {
  run_openmpi "$1" --mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_allreduce_algorithm 4
}
contender_gloo() {
  local port=$((29500 + RANDOM % 1000))
  run_bounded "$cluster" --prefix "$prefix" each --fail-fast -- \
    env GLOO_SOCKET_IFNAME=eth0 /usr/bin/python3 "$root/tools/baselines/gloo_allreduce.py" \
      --master 10.77.0.1 --port "$port" --timeout "$timeout_s" "${common[@]}" -o "$1"
}

# tern-bench, one rank per node over UCX. UCX_TLS=tcp,self: the nodes share one kernel, and UCX
# would otherwise pick shared memory and bypass the emulated links. Its JSON (rank 0's median time
# per operation) is converted to the common format.
tern_bench=$root/build/default/bin/tern-bench
run_tern() {  # run_tern OUT CODEC
  local res=$1 codec=$2 port=$((30500 + RANDOM % 1000)) id
  [ -x "$tern_bench" ] || die "$tern_bench is missing: build it first (cmake --build --preset default --target tern-bench)"
  id=$("$tern_bench" --make-unique-id "10.77.0.1:$port")
  run_bounded "$cluster" --prefix "$prefix" each --fail-fast -- \
    env UCX_TLS=tcp,self TERN_ID="$id" TERN_OUT="$res.tern" TERN_BENCH="$tern_bench" TERN_CODEC="$codec" \
      TERN_SIZES="$sizes" TERN_ITERS="$iters" TERN_WARMUP="$warmup" \
      bash -c '"$TERN_BENCH" --unique-id "$TERN_ID" --rank "$TERN_NODE" --nranks "$TERN_NODES" \
                 --codec "$TERN_CODEC" --sizes "$TERN_SIZES" -n "$TERN_ITERS" -w "$TERN_WARMUP" -c 1 \
                 $( [ "$TERN_NODE" = 0 ] && echo --json "$TERN_OUT" )' || return 1
  /usr/bin/python3 - "$res.tern" "$res" "$n" "$warmup" <<'PY'
import json, sys
src, dst, nodes, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
doc = json.load(open(src))
rows = [{"bytes": r["bytes"], "count": r["count"], "iters": doc["iters"], "median_ms": r["time_us"] / 1e3,
         "min_ms": r["time_us"] / 1e3, "max_ms": r["time_us"] / 1e3, "algbw_GBps": r["algbw_GBps"],
         "busbw_GBps": r["busbw_GBps"], "wrong": r["wrong"], "wire_bytes": r["wire_bytes"]} for r in doc["rows"]]
json.dump({"tool": "tern-bench " + doc["rows"][0]["codec"] if rows else "tern-bench", "nodes": nodes,
           "dtype": "float32", "op": "sum", "warmup": warmup, "results": rows}, open(dst, "w"))
PY
}
contender_tern_fp32() { run_tern "$1" fp32; }
contender_tern_bf16() { run_tern "$1" bf16; }
contender_tern_terngrad() { run_tern "$1" terngrad; }
contender_tern_ternary_ef() { run_tern "$1" ternary-ef; }
contender_tern_sign_ef() { run_tern "$1" sign-ef; }

# ---- run --------------------------------------------------------------------------------------
if [ "$wait_idle" -gt 0 ]; then
  for ((t = 0; t < wait_idle; t += 5)); do
    awk '{exit !($1 < 0.5)}' /proc/loadavg && break
    [ $t -eq 0 ] && echo "$prog: waiting up to ${wait_idle}s for an idle machine (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
    sleep 5
  done
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

iperf_json=null
if [ $do_iperf -eq 1 ]; then
  # shellcheck source=scripts/lib/iperf.sh
  source "$root/scripts/lib/iperf.sh"
  ring=$(for ((k = 0; k < n; k++)); do printf '%d:%d ' "$k" $(((k + 1) % n)); done)
  echo "$prog: iperf3: 1 flow, then a ring of $n flows (3 s each)"
  iperf_flows "$prefix" 3 "0:1" >"$work/iperf1" || die "iperf3 (1 flow) failed"
  iperf_flows "$prefix" 3 "$ring" >"$work/iperfN" || die "iperf3 (ring) failed"
  iperf_json=$(/usr/bin/python3 -c '
import json, sys
def flows(p):
    return [{"src": int(a), "dst": int(b), "mbit_s": float(m)} for a, b, m in (l.split() for l in open(p) if l.strip())]
print(json.dumps({"1 flow": flows(sys.argv[1]), sys.argv[3] + " flows (ring)": flows(sys.argv[2])}))
' "$work/iperf1" "$work/iperfN" "$n")
fi

specs=()
failed=0
for c in "${contender_list[@]}"; do
  res=$work/$c.json
  echo "$prog: === ${CONTENDER_LABEL[$c]} ($n nodes, sizes $sizes) ==="
  start=$(date +%s)
  if "contender_${c//-/_}" "$res"; then
    echo "$prog: ${CONTENDER_LABEL[$c]} done in $(( $(date +%s) - start )) s"
  else
    echo "$prog: ${CONTENDER_LABEL[$c]} FAILED (exit status $?)" >&2
    rm -f "$res"
    failed=1
  fi
  specs+=("$c=${CONTENDER_LABEL[$c]}=$res")
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

B_N=$n B_RATE=$rate B_BURST=$burst B_SIZES=$sizes B_ITERS=$iters B_MIN_ITERS=$min_iters B_BUDGET=$budget \
B_WARMUP=$warmup B_PREFIX=$prefix B_CMD=$cmdline B_LOAD0=$load_before B_LOAD1=$load_after B_IPERF=$iperf_json \
  /usr/bin/python3 - "$work/meta.json" <<'EOF'
import datetime, json, os, platform, sys
e = os.environ
meta = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "config": {"nodes": int(e["B_N"]), "rate": e["B_RATE"], "burst": e["B_BURST"], "sizes": e["B_SIZES"],
               "iters": int(e["B_ITERS"]), "min_iters": int(e["B_MIN_ITERS"]), "budget_s": float(e["B_BUDGET"]),
               "warmup": int(e["B_WARMUP"]), "prefix": e["B_PREFIX"], "command": e["B_CMD"]},
    "host": {"loadavg_before": e["B_LOAD0"], "loadavg_after": e["B_LOAD1"], "nproc": os.cpu_count(),
             "kernel": platform.release()},
    "iperf": json.loads(e["B_IPERF"]),
}
with open(sys.argv[1], "w") as f:
    json.dump(meta, f)
EOF
echo
rc=0
/usr/bin/python3 "$root/tools/baselines/report.py" --out "$out" --meta "$work/meta.json" "${specs[@]}" || rc=$?
echo "results: $out"
if [ $failed -ne 0 ] || [ $rc -ne 0 ]; then exit 1; fi
