#!/usr/bin/env bash
# ib-bench against ucx_perftest in the same run, same sizes, same transport (UCX_TLS=tcp,self):
# `ucx_perftest -t tag_bw` vs `ib-bench bw`, `ucx_perftest -t tag_lat` vs `ib-bench lat`, on
# loopback (both processes in this namespace, 127.0.0.1) and across two emulated nodes
# (scripts/cluster.sh). Each measurement is one server/client pair of processes per size; the two
# tools alternate (which goes first flips every repetition) so machine load hits both alike.
# Prints the medians and ratios (ib-bench / ucx_perftest); docs/benchmarks.md records a run.
#
# Compared numbers: bw = ucx_perftest's "bandwidth overall" (MB/s, 2^20) vs ib-bench's
# "BW average"; lat = ucx_perftest's 50th percentile overhead vs ib-bench's t_typical (both one-way,
# half the round trip, microseconds), and the averages for reference.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/scripts/cluster.sh
prog=$(basename "$0")

usage() {
  cat <<EOF
Usage: $prog [options]
  --bench PATH      ib-bench binary (default: build/ib/bin/ib-bench, else build/default/bin/ib-bench)
  --where LIST      loopback,cluster (default both)
  --bw-sizes LIST   bw message sizes (default 4K,64K,1M)
  --lat-sizes LIST  lat message sizes (default 8,4K)
  --bw-bytes B      bytes per bw run; iterations = B / size, within 500..50000 (default 512M)
  --lat-iters N     round trips per lat run (default 10000)
  --window W        bw sends in flight, for both tools (ucx_perftest -O, ib-bench -t; default 64)
  --reps N          repetitions; medians are printed (default 5)
  --rate R          cluster link rate (default 10gbit; 'none' = unshaped)
  --prefix P        cluster prefix (default ibbench); created here and removed at exit
  -h, --help
Needs ucx_perftest (ucx-utils); the cluster part needs root.
EOF
}
die() { echo "$prog: $*" >&2; exit 1; }

cmdline="$0 $*"
bench="" where=loopback,cluster bw_sizes=4K,64K,1M lat_sizes=8,4K bw_bytes=512M lat_iters=10000 window=64 reps=5 rate=10gbit prefix=ibbench
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --bench|--where|--bw-sizes|--lat-sizes|--bw-bytes|--lat-iters|--window|--reps|--rate|--prefix)
      [ $# -ge 2 ] || die "option $1 needs a value" ;;&
    --bench) bench=$2; shift 2 ;;
    --where) where=$2; shift 2 ;;
    --bw-sizes) bw_sizes=$2; shift 2 ;;
    --lat-sizes) lat_sizes=$2; shift 2 ;;
    --bw-bytes) bw_bytes=$2; shift 2 ;;
    --lat-iters) lat_iters=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
if [ -z "$bench" ]; then
  for b in "$root/build/ib/bin/ib-bench" "$root/build/default/bin/ib-bench"; do
    if [ -x "$b" ]; then bench=$b; break; fi
  done
fi
[ -x "$bench" ] || die "no ib-bench binary (build it: ninja -C build/default ib-bench, or pass --bench)"
command -v ucx_perftest >/dev/null || die "ucx_perftest not found (apt-get install ucx-utils)"
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"

bytes_of() {  # 4K -> 4096
  local v=${1%[KkMmGg]} s=${1: -1}
  case $s in K|k) echo $((v << 10)) ;; M|m) echo $((v << 20)) ;; G|g) echo $((v << 30)) ;; *) echo "$1" ;; esac
}
bw_iters() { local n=$(( $(bytes_of "$bw_bytes") / $1 )); [ $n -lt 500 ] && n=500; [ $n -gt 50000 ] && n=50000; echo $n; }

work=$(mktemp -d)
made_cluster=0
cleanup() {
  local p
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  if [ $made_cluster -eq 1 ]; then "$cluster" --prefix "$prefix" down >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export UCX_TLS=tcp,self

port=20000
# run_pair WHERE SERVER_CMD... -- CLIENT_CMD...: one server/client pair; prints the client's stdout.
run_pair() {
  local where=$1; shift
  local server=() client=()
  while [ "$1" != -- ]; do server+=("$1"); shift; done
  shift; client=("$@")
  local pre0=() pre1=()
  if [ "$where" = cluster ]; then
    pre0=("$cluster" --prefix "$prefix" exec 0 -- env UCX_TLS=tcp,self)
    pre1=("$cluster" --prefix "$prefix" exec 1 -- env UCX_TLS=tcp,self)
  fi
  "${pre0[@]}" "${server[@]}" >"$work/server.out" 2>&1 &
  local spid=$!
  sleep 0.3
  local rc=0
  timeout 300 "${pre1[@]}" "${client[@]}" 2>"$work/client.err" || rc=$?
  timeout 30 tail --pid=$spid -f /dev/null || kill $spid 2>/dev/null || true
  wait $spid 2>/dev/null || true
  if [ $rc -ne 0 ]; then echo "$prog: client failed ($rc): ${client[*]}: $(tail -3 "$work/client.err")" >&2; return 1; fi
}

# One measurement; prints "primary secondary" (bw: overall/average MB/s and the second number;
# lat: median and average one-way us).
measure() {  # TOOL TEST WHERE SIZE
  local tool=$1 test=$2 where=$3 size=$4 host=127.0.0.1 n w b
  local ucx_window=() ib_window=()
  [ "$where" = cluster ] && host=10.77.0.1
  b=$(bytes_of "$size")
  if [ "$test" = bw ]; then
    n=$(bw_iters "$b") ucx_window=(-O "$window") ib_window=(-t "$window")
  else
    n=$lat_iters
  fi
  w=$((n / 10))
  port=$((port + 1))
  if [ "$tool" = ucx_perftest ]; then
    run_pair "$where" ucx_perftest -p $port -- ucx_perftest "$host" -p $port -t "tag_$test" -s "$b" -n $n -w $w "${ucx_window[@]}" >"$work/out" || return 1
    # Final: iters | overhead 50%ile avg overall | bw avg overall | msgrate avg overall
    if [ "$test" = bw ]; then awk '/^Final:/ {print $7, $6}' "$work/out"; else awk '/^Final:/ {print $3, $4}' "$work/out"; fi
  else
    run_pair "$where" "$bench" "$test" --server -p $port -s "$size" -n $n --warmup $w "${ib_window[@]}" --timeout 120 -- \
      "$bench" "$test" "$host" -p $port -s "$size" -n $n --warmup $w "${ib_window[@]}" --timeout 120 --json >"$work/out" || return 1
    /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(r["bw_avg_mbs"], r["bw_peak_mbs"]) if "bw_avg_mbs" in r else print(r["t_typical_us"], r["t_avg_us"])' "$work/out"
  fi
}

median() { tr ' ' '\n' | grep -v '^$' | grep -v nan | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "$prog: $("$bench" --version 2>/dev/null | tail -1 | sed 's/^/ib-bench /'), ucx $(ucx_info -v 2>/dev/null | awk '/^# Version/ {print $3; exit}'), UCX_TLS=$UCX_TLS, bw window $window, $reps repetitions"
echo "$prog: command: $cmdline"
echo "$prog: load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A results=() pair=()
for w in ${where//,/ }; do
  if [ "$w" = cluster ]; then
    "$cluster" --prefix "$prefix" up -n 2 --rate "$rate" >/dev/null
    made_cluster=1
    echo "$prog: cluster '$prefix': 2 nodes, links shaped to $rate"
  fi
  for rep in $(seq 1 "$reps"); do
    order=(ucx_perftest ib-bench)
    if [ $((rep % 2)) -eq 0 ]; then order=(ib-bench ucx_perftest); fi
    for test in bw lat; do
      sizes=$bw_sizes; [ $test = lat ] && sizes=$lat_sizes
      for size in ${sizes//,/ }; do
        for tool in "${order[@]}"; do
          v=$(measure "$tool" "$test" "$w" "$size") || v="nan nan"
          [ -n "$v" ] || v="nan nan"
          pair[$tool]=${v%% *}
          key="$w|$test|$size|$tool"
          results[$key]="${results[$key]:-} ${v%% *}"
          results[$key.2]="${results[$key.2]:-} ${v##* }"
          echo "  rep $rep $w $test $size $tool: $v" >&2
        done
        # The two tools ran back to back: their ratio shares the machine's load at that moment.
        r=$(awk -v a="${pair[ib-bench]}" -v b="${pair[ucx_perftest]}" 'BEGIN {if (a != "nan" && b > 0) printf "%.4f", a / b; else print "nan"}')
        results["$w|$test|$size|pairs"]="${results["$w|$test|$size|pairs"]:-} $r"
      done
    done
  done
  if [ "$w" = cluster ]; then "$cluster" --prefix "$prefix" down >/dev/null; made_cluster=0; fi
done
echo "$prog: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| %-8s | %-4s | %-5s | %-28s | %-28s | %-6s | %-12s |\n' where test size "ucx_perftest" "ib-bench" ratio "paired ratio"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ---------- ------ ------- ------------------------------ ------------------------------ -------- --------------
for w in ${where//,/ }; do
  for test in bw lat; do
    sizes=$bw_sizes; [ $test = lat ] && sizes=$lat_sizes
    for size in ${sizes//,/ }; do
      u=$(echo "${results["$w|$test|$size|ucx_perftest"]}" | median)
      i=$(echo "${results["$w|$test|$size|ib-bench"]}" | median)
      u2=$(echo "${results["$w|$test|$size|ucx_perftest.2"]}" | median)
      i2=$(echo "${results["$w|$test|$size|ib-bench.2"]}" | median)
      ratio=$(awk -v a="$i" -v b="$u" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "nan"}')
      paired=$(echo "${results["$w|$test|$size|pairs"]}" | median)
      paired=$(awk -v p="$paired" 'BEGIN {if (p == "nan") print p; else printf "%.3f", p}')
      if [ $test = bw ]; then
        us=$(printf '%.1f MB/s' "$u"); is=$(printf '%.1f MB/s (peak %.0f)' "$i" "$i2")
      else
        us=$(printf '%.2f us (avg %.2f)' "$u" "$u2"); is=$(printf '%.2f us (avg %.2f)' "$i" "$i2")
      fi
      printf '| %-8s | %-4s | %-5s | %-28s | %-28s | %-6s | %-12s |\n' "$w" "$test" "$size" "$us" "$is" "$ratio" "$paired"
    done
  done
done
echo
echo "ratio = ib-bench / ucx_perftest of the medians; paired ratio = median over repetitions of the ratio of the two"
echo "back-to-back runs (robust when the machine's load drifts). bw: MB/s, higher is better; lat: median one-way us, lower is better."
echo "done when: bw ratio >= 0.90, lat ratio <= 1.20."
