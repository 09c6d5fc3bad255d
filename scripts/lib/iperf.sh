# shellcheck shell=bash
# iperf3 between nodes of an emulated cluster (scripts/cluster.sh). Source this file.
#
#   iperf_flows PREFIX SECONDS "SRC:DST [SRC:DST ...]"
#     runs one TCP flow per SRC:DST pair (node numbers), all at the same time, for SECONDS;
#     prints one line per flow: "SRC DST MBIT_PER_S" (receiver side). Returns non-zero on failure.
# Needs: iperf3, ss (iproute2), /usr/bin/python3, cluster.sh next to this file's folder.

_iperf_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_iperf_cluster=$_iperf_lib_dir/../cluster.sh

iperf_flows() {
  local prefix=$1 secs=$2 pairs=$3
  local tmp; tmp=$(mktemp -d "${TMPDIR:-/tmp}/tern-iperf.XXXXXX")
  local -a spids=() cpids=() srcs=() dsts=() ports=()
  local i=0 pair src dst port rc=0 t
  for pair in $pairs; do
    src=${pair%%:*} dst=${pair##*:} port=$((5301 + i))
    srcs+=("$src") dsts+=("$dst") ports+=("$port")
    # -1: the server exits after one client; timeout bounds it if no client ever comes.
    timeout -k 2 $((secs + 20)) "$_iperf_cluster" --prefix "$prefix" exec "$dst" -- \
      iperf3 -s -1 -p "$port" -B "10.77.0.$((dst + 1))" >"$tmp/server.$i" 2>&1 &
    spids+=($!)
    i=$((i + 1))
  done
  # Wait (bounded) until every server listens.
  for ((i = 0; i < ${#ports[@]}; i++)); do
    for ((t = 0; t < 50; t++)); do
      if ip netns exec "$prefix-n${dsts[i]}" ss -Hltn "sport = :${ports[i]}" 2>/dev/null | grep -q .; then break; fi
      sleep 0.1
    done
  done
  for ((i = 0; i < ${#ports[@]}; i++)); do
    timeout -k 2 $((secs + 15)) "$_iperf_cluster" --prefix "$prefix" exec "${srcs[i]}" -- \
      iperf3 -c "10.77.0.$((dsts[i] + 1))" -p "${ports[i]}" -t "$secs" -J >"$tmp/client.$i" 2>"$tmp/client.$i.err" &
    cpids+=($!)
  done
  for ((i = 0; i < ${#cpids[@]}; i++)); do
    wait "${cpids[i]}" || { rc=1; echo "iperf_flows: client ${srcs[i]} -> ${dsts[i]} failed: $(head -c 300 "$tmp/client.$i.err")" >&2; }
  done
  for ((i = 0; i < ${#spids[@]}; i++)); do
    kill "${spids[i]}" 2>/dev/null || true
    wait "${spids[i]}" 2>/dev/null || true
  done
  if [ $rc -eq 0 ]; then
    for ((i = 0; i < ${#cpids[@]}; i++)); do
      /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
if "error" in d: sys.exit("iperf3: " + d["error"])
print(sys.argv[2], sys.argv[3], "%.1f" % (d["end"]["sum_received"]["bits_per_second"] / 1e6))
' "$tmp/client.$i" "${srcs[i]}" "${dsts[i]}" || rc=1
    done
  fi
  rm -rf "$tmp"
  return $rc
}
