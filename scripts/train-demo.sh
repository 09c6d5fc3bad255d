#!/usr/bin/env bash
# The training half of the demo: PyTorch DDP on scikit-learn's digits, one trainer per node of the
# emulated cluster (scripts/cluster.sh), once with gloo fp32 allreduce (DDP's own path) and once per
# tern codec through the libtern DDP hook (one ternd per node), same seeds and hyper-parameters.
# Prints one updating progress line per run, then the side-by-side table; writes per-run JSON, a
# Markdown/JSON report and a PNG plot (examples/digits_report.py). Tears down what it started (the
# ternds, and the cluster if it created it) on exit, Ctrl-C included.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/scripts/cluster.sh
prog=$(basename "$0")
python=/usr/bin/python3

usage() {
  cat <<EOF
Usage: $prog [options]
  --build DIR       build tree with bin/ternd and python/tern/_tern*.so (default build/default)
  --out DIR         results: run-*.json, report.md, report.json, training.png, logs/
                    (default build/demo/training)
  --runs LIST       comma-separated from: gloo fp32 fp16 bf16 terngrad ternary-ef sign-ef
                    (default gloo,fp32,bf16,terngrad,ternary-ef,sign-ef)
  --epochs E        epochs per run (default 8; every run the same)
  -n N              nodes = trainers (default 4; with a running cluster: its size)
  --rate R          link rate of a new cluster (default 1gbit)
  --prefix P        cluster prefix (default ttrain); a running cluster with it is used as is,
                    otherwise one is created and removed at exit
  --run-timeout S   limit per run in seconds (default 480)
  -h, --help
Needs root (network namespaces). Exit status: non-zero if a run failed or replicas disagreed.
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }

cmdline=$(printf '%q ' "$0" "$@"); cmdline=${cmdline% }
build=$root/build/default out=$root/build/demo/training runs=gloo,fp32,bf16,terngrad,ternary-ef,sign-ef
epochs=8 n="" rate=1gbit prefix=ttrain run_timeout=480
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --build|--out|--runs|--epochs|-n|--rate|--prefix|--run-timeout) [ $# -ge 2 ] || die "option $1 needs a value" ;;&
    --build) build=$(cd "$2" && pwd) || die "no build directory '$2'"; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --run-timeout) run_timeout=$2; shift 2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces); run as root"
[[ $epochs =~ ^[1-9][0-9]*$ ]] || die "--epochs must be a positive integer"
[[ $run_timeout =~ ^[1-9][0-9]*$ ]] || die "--run-timeout must be whole seconds"
IFS=, read -r -a run_list <<<"$runs"
need_tern=0
for r in "${run_list[@]}"; do
  case $r in
    gloo) ;;
    fp32|fp16|bf16|terngrad|ternary-ef|sign-ef) need_tern=1 ;;
    *) die "unknown run '$r' (gloo or a tern codec: fp32 fp16 bf16 terngrad ternary-ef sign-ef)" ;;
  esac
done
ternd=$build/bin/ternd
if [ $need_tern -eq 1 ]; then
  [ -x "$ternd" ] || die "no ternd at $ternd: build it (cmake --build --preset default --target ternd _tern)"
  compgen -G "$build/python/tern/_tern*.so" >/dev/null || die "no Python module in $build/python/tern: build target _tern"
fi

mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
rm -f "$out"/run-*.json "$out"/progress-*
work=$(mktemp -d /tmp/tern-train-demo.XXXXXX)
chmod 755 "$work"  # ternd's socket lives here
created_cluster=0 ternd_pids=() trainer_pids=()

stop_pids() {  # TERM, then KILL after ~3 s, for the given pids
  local p i
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < 30; i++)); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && return 0
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -t 1 ] && printf '\n'
  stop_pids "${trainer_pids[@]}"
  stop_pids "${ternd_pids[@]}"
  if [ "$created_cluster" -eq 1 ]; then "$cluster" --prefix "$prefix" down >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "$prog: interrupted, tearing down" >&2; exit 130' INT TERM

if "$cluster" --prefix "$prefix" info >/dev/null 2>&1; then
  n=$("$cluster" --prefix "$prefix" info | sed -n 's/^N=//p')
  rate=$("$cluster" --prefix "$prefix" info | sed -n 's/^RATE=//p')
  echo "$prog: using the running cluster '$prefix' ($n nodes, $rate)"
else
  n=${n:-4}
  "$cluster" --prefix "$prefix" up -n "$n" --rate "$rate" >/dev/null
  created_cluster=1
  echo "$prog: cluster '$prefix' up: $n nodes, links $rate"
fi
[ "$n" -ge 2 ] || die "need at least 2 nodes"

if [ $need_tern -eq 1 ]; then
  for ((k = 0; k < n; k++)); do
    # UCX over TCP only: the namespaces share one kernel, and UCX's shared-memory transports would
    # bypass the shaped links.
    "$cluster" --prefix "$prefix" exec "$k" -- "$ternd" --config /dev/null --socket-path "$work/ternd-n$k.sock" \
      --ucx-tls tcp,self --log-format text --log-level "${TERND_LOG_LEVEL:-info}" >"$out/logs/ternd-n$k.log" 2>&1 &
    ternd_pids+=($!)
  done
  for ((k = 0; k < n; k++)); do
    for ((i = 0; i < 200; i++)); do [ -S "$work/ternd-n$k.sock" ] && break; sleep 0.05; done
    [ -S "$work/ternd-n$k.sock" ] || { cat "$out/logs/ternd-n$k.log" >&2; die "ternd on node $k did not start"; }
  done
  echo "$prog: ternd running on every node"
fi

# One run: a trainer per node, rank 0's progress file shown as one updating line.
run_one() {
  local idx=$1 name=$2 label k
  local port=$((29600 + idx))
  local args=(--epochs "$epochs" --port "$port" --master 10.77.0.1 --progress "$work/progress")
  if [ "$name" = gloo ]; then label=gloo; args+=(--comm gloo); else label=tern-$name; args+=(--comm tern --codec "$name"); fi
  rm -f "$work/progress"
  trainer_pids=()
  for ((k = 0; k < n; k++)); do
    local extra=()
    [ "$k" -eq 0 ] && extra=(-o "$out/run-$idx-$label.json")
    "$cluster" --prefix "$prefix" exec "$k" -- env PYTHONPATH="$build/python" timeout -k 5 "$run_timeout" \
      "$python" "$root/examples/digits_ddp.py" "${args[@]}" "${extra[@]}" --tern-socket "$work/ternd-n$k.sock" \
      --label "$label" >"$out/logs/$label-n$k.log" 2>&1 &
    trainer_pids+=($!)
  done
  local start=$SECONDS last_print=0 line="starting"
  while :; do
    local running=0
    for p in "${trainer_pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
    [ -f "$work/progress" ] && line=$(cat "$work/progress" 2>/dev/null || echo "$line")
    if [ -t 1 ]; then
      printf '\r\033[K[%d/%d] %-16s %3ds  %s' "$idx" "${#run_list[@]}" "$label" $((SECONDS - start)) "$line"
    elif [ $((SECONDS - last_print)) -ge 15 ]; then
      last_print=$SECONDS
      printf '[%d/%d] %-16s %3ds  %s\n' "$idx" "${#run_list[@]}" "$label" $((SECONDS - start)) "$line"
    fi
    [ $running -eq 0 ] && break
    sleep 0.5
  done
  local failed=0
  for ((k = 0; k < n; k++)); do wait "${trainer_pids[$k]}" || failed=1; done
  trainer_pids=()
  [ -t 1 ] && printf '\r\033[K'
  if [ $failed -ne 0 ] || [ ! -f "$out/run-$idx-$label.json" ]; then
    echo "[$idx/${#run_list[@]}] $label FAILED after $((SECONDS - start)) s; last lines of each trainer's log:" >&2
    for ((k = 0; k < n; k++)); do tail -n 5 "$out/logs/$label-n$k.log" | sed "s/^/  [n$k] /" >&2; done
    return 1
  fi
  echo "[$idx/${#run_list[@]}] $(grep -h '^digits_ddp' "$out/logs/$label-n0.log" | sed 's/^digits_ddp //') ($((SECONDS - start)) s)"
}

status=0 idx=0 t0=$SECONDS
for r in "${run_list[@]}"; do
  idx=$((idx + 1))
  run_one "$idx" "$r" || status=1
done
echo "$prog: $idx runs in $((SECONDS - t0)) s"

shopt -s nullglob
jsons=("$out"/run-*.json)
[ ${#jsons[@]} -gt 0 ] || die "no run produced results"
"$python" "$root/examples/digits_report.py" "${jsons[@]}" -o "$out" \
  --meta "command=$cmdline" --meta "machine=$(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --meta "cluster=$n nodes (network namespaces), tbf-shaped veth links at $rate" || status=1
echo "$prog: report in $out/report.md, plot $out/training.png"
exit $status
