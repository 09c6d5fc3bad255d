#!/usr/bin/env bash
# An emulated N-node cluster on one machine: network namespaces joined by a Linux bridge, every
# link shaped with tc tbf. See docs in --help and /work/shared/reference/emulated-cluster.md.
#
# Layout for prefix P (default "tern") and N nodes:
#   namespaces  P-n0 .. P-n{N-1}, each with lo and eth0 = 10.77.0.(K+1)/24
#   bridge      P-br in the root namespace, NO address, nothing routed out
#   veth peers  P-vK on the bridge (root namespace side of node K's eth0)
#   shaping     tbf on node K's eth0 (egress) AND on P-vK (traffic towards node K: many-to-one)
# State: $TERN_CLUSTER_STATE_DIR (default /run/tern-cluster, else $TMPDIR/tern-cluster)/P.env
set -euo pipefail

prog=$(basename "$0")
self=$(readlink -f "$0")

usage() {
  cat <<EOF
Usage: $prog [--prefix P] COMMAND [ARGS]

Emulated N-node cluster: network namespaces P-n0..P-n{N-1} on a bridge P-br (no address),
node K has eth0 = 10.77.0.(K+1)/24, every link shaped with tc tbf (both directions).

Commands:
  up [-n N] [--rate R] [--burst B] [--latency L]
        create the cluster (defaults: -n 4, --rate 1gbit, --burst 128kb, --latency 20ms;
        --rate none disables shaping). Fails if a cluster with this prefix exists.
  down  remove everything the cluster created (stops processes left in its namespaces);
        safe to call twice
  exec K [--] CMD...
        run CMD in node K: its network namespace and its own UTS namespace (hostname P-nK);
        TERN_NODE, TERN_NODES, TERN_NODE_ADDR, TERN_NODE_NAME are exported
  each [--timeout S] [--fail-fast] [--] CMD...
        run CMD on every node in parallel (same variables), output prefixed "[P-nK] "
        (stderr merged into stdout), wait for all; exit status: that of the first node to fail,
        0 if all succeeded. --fail-fast stops the others when one fails; --timeout S stops a
        node's command after S seconds (status 124).
  status        nodes, addresses, links, qdiscs
  info          the state as KEY=VALUE lines (N, RATE, BURST, LATENCY, PREFIX, ...); 1 if none
  cut K         bring node K's link down (its bridge-side veth: a cut cable, silent drop)
  heal K        bring it back up
  list          prefixes of the clusters recorded in the state directory

Options (anywhere before "--"):
  --prefix P    names' prefix, [a-z0-9]{1,10} (default \$TERN_CLUSTER_PREFIX or "tern")
  -h, --help    this help

Needs root with CAP_NET_ADMIN and CAP_SYS_ADMIN. Traffic stays inside the namespaces.
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }

# ---- arguments ---------------------------------------------------------------------------------
prefix=${TERN_CLUSTER_PREFIX:-tern}
cmd=""
nodes=4 rate=1gbit burst=128kb latency=20ms
timeout_s=0 fail_fast=0
pos=()     # positional arguments of the command (before "--")
rest=()    # the command line after "--" (exec/each)

need_val() { [ $# -ge 2 ] || die "option $1 needs a value (see --help)"; }

while [ $# -gt 0 ]; do
  # "exec K CMD...": everything after K is the command ("--" optional).
  if [ "$cmd" = exec ] && [ ${#pos[@]} -eq 1 ] && [ "$1" != -- ]; then rest=("$@"); break; fi
  case $1 in
    -h|--help) usage; exit 0 ;;
    --prefix) need_val "$@"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    -n|--nodes) need_val "$@"; nodes=$2; shift 2 ;;
    --rate) need_val "$@"; rate=$2; shift 2 ;;
    --burst) need_val "$@"; burst=$2; shift 2 ;;
    --latency) need_val "$@"; latency=$2; shift 2 ;;
    --timeout) need_val "$@"; timeout_s=$2; shift 2 ;;
    --fail-fast) fail_fast=1; shift ;;
    --) shift; rest=("$@"); break ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) if [ -z "$cmd" ]; then cmd=$1
       elif [ "$cmd" = each ]; then rest=("$@"); break   # "each CMD..." without "--"
       else pos+=("$1"); fi
       shift ;;
  esac
done

[ -n "$cmd" ] || { usage >&2; exit 2; }
[[ $prefix =~ ^[a-z0-9]{1,10}$ ]] || die "bad --prefix '$prefix': use 1-10 characters [a-z0-9]"

# ---- names and state ---------------------------------------------------------------------------
ns_name() { echo "$prefix-n$1"; }
veth_name() { echo "$prefix-v$1"; }
node_addr() { echo "10.77.0.$(($1 + 1))"; }
bridge=$prefix-br

state_dir() {
  if [ -n "${TERN_CLUSTER_STATE_DIR:-}" ]; then echo "$TERN_CLUSTER_STATE_DIR"
  elif [ -d /run ] && [ -w /run ]; then echo /run/tern-cluster
  else echo "${TMPDIR:-/tmp}/tern-cluster"; fi
}
state_file="$(state_dir)/$prefix.env"

declare -A st=()
load_state() {
  [ -f "$state_file" ] || return 1
  local k v
  while IFS='=' read -r k v; do
    [[ $k =~ ^[A-Z_]+$ ]] && st[$k]=$v
  done <"$state_file"
  [[ ${st[N]:-} =~ ^[0-9]+$ ]] || die "corrupt state file $state_file (no N)"
}

require_cluster() {
  load_state || die "no cluster with prefix '$prefix' (state file $state_file missing): run '$prog --prefix $prefix up' first"
}

check_node() {
  if ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -ge "${st[N]}" ]; then die "bad node '$1': expected 0..$((st[N] - 1))"; fi
}

# Root, CAP_NET_ADMIN (bit 12) and CAP_SYS_ADMIN (bit 21, for setns/unshare) in the effective set.
require_privileges() {
  local capeff
  capeff=$(awk '/^CapEff:/ {print $2}' /proc/self/status 2>/dev/null || true)
  if [ "$(id -u)" -ne 0 ] || [ -z "$capeff" ] || (( (0x$capeff >> 12 & 1) == 0 || (0x$capeff >> 21 & 1) == 0 )); then
    die "needs root with CAP_NET_ADMIN and CAP_SYS_ADMIN (network namespaces, veth, bridge, tc); run it as root"
  fi
  # Root inside a user namespace (an unprivileged container) has the capabilities on paper only.
  if [ -r /proc/self/uid_map ] && ! awk '$1 == 0 && $2 == 0 && $3 == 4294967295 {ok = 1} END {exit !ok}' /proc/self/uid_map; then
    die "running inside a user namespace (unprivileged container?): network namespaces need real root"
  fi
  local t
  for t in ip tc unshare; do
    command -v "$t" >/dev/null || die "'$t' not found (install iproute2 and util-linux)"
  done
}

our_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$prefix-n[0-9]+$" || true; }
our_links() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^($prefix-v[0-9]+|$prefix-br)$" || true; }

# ---- up / down ---------------------------------------------------------------------------------
# Writes a sysctl for our own interface only (no addresses anywhere in the root namespace).
no_ipv6() { local f=/proc/sys/net/ipv6/conf/$1/disable_ipv6; if [ -w "$f" ]; then echo 1 >"$f"; fi; }

shape() {  # shape [-n NS] DEV
  [ "$rate" = none ] && return 0
  local nsargs=()
  if [ "$1" = -n ]; then nsargs=(-n "$2"); shift 2; fi
  tc "${nsargs[@]}" qdisc replace dev "$1" root tbf rate "$rate" burst "$burst" latency "$latency"
}

cmd_up() {
  if ! [[ $nodes =~ ^[0-9]+$ ]] || [ "$nodes" -lt 1 ] || [ "$nodes" -gt 254 ]; then die "-n must be 1..254 (got '$nodes')"; fi
  [ $(( ${#prefix} + 2 + ${#nodes} )) -le 15 ] || die "prefix '$prefix' too long for $nodes nodes (interface names are limited to 15 characters)"
  [[ $rate = none || $rate =~ ^[0-9.]+[kmgt]?(bit|bps)$ ]] || die "bad --rate '$rate' (e.g. 1gbit, 200mbit, none)"
  require_privileges
  if [ -f "$state_file" ] || [ -n "$(our_namespaces)" ] || [ -n "$(our_links)" ]; then
    die "a cluster with prefix '$prefix' already exists (or leftovers of one): run '$prog --prefix $prefix down' first"
  fi
  mkdir -p "$(dirname "$state_file")"
  {
    echo "PREFIX=$prefix"; echo "N=$nodes"; echo "RATE=$rate"; echo "BURST=$burst"; echo "LATENCY=$latency"
    echo "BRIDGE=$bridge"; echo "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "OWNER_PID=$PPID"
  } >"$state_file"
  # Half-built clusters are removed.
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed: removing what was created"; cmd_down >/dev/null 2>&1 || true; fi' EXIT
  trap 'exit 130' INT TERM

  ip link add "$bridge" type bridge
  no_ipv6 "$bridge"
  ip link set "$bridge" up
  local k ns veth
  for ((k = 0; k < nodes; k++)); do
    ns=$(ns_name "$k") veth=$(veth_name "$k")
    ip netns add "$ns"
    # IPv6 off inside the node: eth0 carries only 10.77.0.x (gloo/MPI pick an interface's address).
    # shellcheck disable=SC2016  # expanded by the inner shell
    ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do [ -w "$f" ] && echo 1 > "$f"; done; true'
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    no_ipv6 "$veth"
    ip link set "$veth" master "$bridge"
    ip link set "$veth" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$(node_addr "$k")/24" dev eth0
    ip -n "$ns" link set eth0 up
    shape -n "$ns" eth0
    shape "$veth"
  done
  trap - EXIT INT TERM
  echo "$prog: cluster '$prefix' up: $nodes nodes ($(ns_name 0)..$(ns_name $((nodes - 1))), 10.77.0.1..$(node_addr $((nodes - 1)))), rate $rate burst $burst"
}

# Stops processes still running in a namespace (all of them were started into it by us).
kill_ns_pids() {
  local ns=$1 pids i
  pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || true
  [ -n "${pids// /}" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || true
    [ -n "${pids// /}" ] || return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || true
    [ -n "${pids// /}" ] || return 0
    sleep 0.1
  done
  log "warning: processes $pids are still in $ns"
}

cmd_down() {
  require_privileges
  local ns l found=0
  for ns in $(our_namespaces); do
    found=1
    kill_ns_pids "$ns"
    ip netns del "$ns" 2>/dev/null || log "warning: could not delete namespace $ns"
  done
  # Deleting a namespace deletes its veth pair; anything left (e.g. a half-created pair) goes here.
  for l in $(our_links); do
    found=1
    ip link del "$l" 2>/dev/null || true
  done
  [ -f "$state_file" ] && { found=1; rm -f "$state_file"; }
  rmdir "$(dirname "$state_file")" 2>/dev/null || true
  local left
  left="$(our_namespaces)$(our_links)"
  [ -z "$left" ] || die "could not remove: $(echo "$left" | tr '\n' ' ')"
  if [ $found -eq 1 ]; then echo "$prog: cluster '$prefix' down"; else echo "$prog: no cluster '$prefix' (nothing to do)"; fi
}

# ---- exec / each -------------------------------------------------------------------------------
# Runs "$@" in node $k (network namespace + a new UTS namespace with hostname P-nK); never returns.
exec_in_node() {
  local k=$1; shift
  [ $# -gt 0 ] || die "exec: no command given"
  local ns; ns=$(ns_name "$k")
  [ -e "/run/netns/$ns" ] || die "namespace $ns does not exist (cluster half torn down?): '$prog --prefix $prefix down' and 'up' again"
  export TERN_NODE=$k TERN_NODES=${st[N]} TERN_NODE_ADDR; TERN_NODE_ADDR=$(node_addr "$k")
  export TERN_NODE_NAME=$ns TERN_CLUSTER_PREFIX=$prefix
  # shellcheck disable=SC2016  # expanded by the inner shell
  exec ip netns exec "$ns" unshare --uts -- /bin/sh -c '
    if command -v hostname >/dev/null 2>&1; then hostname "$0"; else printf %s "$0" > /proc/sys/kernel/hostname; fi || exit 126
    exec "$@"' "$ns" "$@"
}

cmd_exec() {
  [ ${#pos[@]} -eq 1 ] || die "usage: $prog exec K [--] CMD..."
  require_privileges
  require_cluster
  check_node "${pos[0]}"
  exec_in_node "${pos[0]}" "${rest[@]}"
}

# Internal: one node's share of "each": output prefixed with the node's name.
cmd_node() {
  local k=${pos[0]} name
  name=$(ns_name "$k")
  local tmo=()
  [ "$timeout_s" -gt 0 ] && tmo=(timeout -k 5 "$timeout_s")
  "${tmo[@]}" "$self" --prefix "$prefix" exec "$k" -- "${rest[@]}" </dev/null 2>&1 | sed -u "s/^/[$name] /"
}

cmd_each() {
  [ ${#pos[@]} -eq 0 ] || die "usage: $prog each [--timeout S] [--fail-fast] [--] CMD..."
  [ ${#rest[@]} -gt 0 ] || die "each: no command given"
  [[ $timeout_s =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds"
  require_privileges
  require_cluster
  local n=${st[N]} k j
  local -a pid=() rc=()
  local -A node_of=()
  # Each node's pipeline runs in its own session/process group (setsid), so it can be stopped whole.
  stop_all() {
    local p
    for p in "${pid[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  }
  trap 'stop_all; exit 130' INT TERM
  for ((k = 0; k < n; k++)); do
    setsid -w "$self" --prefix "$prefix" --timeout "$timeout_s" _node "$k" -- "${rest[@]}" &
    pid[k]=$!
    node_of[$!]=$k
  done
  local done_n=0 p r first_rc=0
  while [ $done_n -lt "$n" ]; do
    r=0 p=""
    wait -n -p p || r=$?
    [ -n "$p" ] || break
    k=${node_of[$p]}
    rc[k]=$r
    done_n=$((done_n + 1))
    if [ "$r" -ne 0 ]; then
      log "node $(ns_name "$k") failed with exit status $r"
      if [ $first_rc -eq 0 ]; then
        first_rc=$r
        if [ $fail_fast -eq 1 ]; then
          for ((j = 0; j < n; j++)); do
            if [ -z "${rc[j]:-}" ]; then kill -TERM -- "-${pid[j]}" 2>/dev/null || true; fi
          done
        fi
      fi
    fi
  done
  trap - INT TERM
  return $first_rc
}

# ---- status / info / cut / heal ----------------------------------------------------------------
cmd_status() {
  require_privileges
  require_cluster
  local n=${st[N]} k ns veth
  echo "cluster '$prefix': ${st[N]} nodes, rate ${st[RATE]:-?} burst ${st[BURST]:-?} latency ${st[LATENCY]:-?}, bridge $bridge, created ${st[CREATED]:-?}"
  printf '%-12s %-12s %-10s %-12s %s\n' node address eth0 "bridge port" "qdiscs (eth0 | bridge port)"
  for ((k = 0; k < n; k++)); do
    ns=$(ns_name "$k") veth=$(veth_name "$k")
    local addr state bstate q1 q2
    addr=$(ip -n "$ns" -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | head -1)
    state=$(ip -n "$ns" -o link show dev eth0 2>/dev/null | grep -o 'state [A-Z]*' | cut -d' ' -f2)
    bstate=$(ip -o link show dev "$veth" 2>/dev/null | grep -o 'state [A-Z]*' | cut -d' ' -f2)
    q1=$(tc -n "$ns" qdisc show dev eth0 2>/dev/null | head -1 | sed 's/ *$//')
    q2=$(tc qdisc show dev "$veth" 2>/dev/null | head -1 | sed 's/ *$//')
    printf '%-12s %-12s %-10s %-12s %s | %s\n' "$ns" "${addr:-MISSING}" "${state:-MISSING}" "${bstate:-MISSING}" "${q1:-none}" "${q2:-none}"
  done
}

cmd_info() {
  require_cluster
  cat "$state_file"
}

cmd_link() {  # cut/heal
  [ ${#pos[@]} -eq 1 ] || die "usage: $prog $cmd K"
  require_privileges
  require_cluster
  check_node "${pos[0]}"
  local veth; veth=$(veth_name "${pos[0]}")
  if [ "$cmd" = cut ]; then ip link set "$veth" down; else ip link set "$veth" up; fi
  echo "$prog: node $(ns_name "${pos[0]}") link $([ "$cmd" = cut ] && echo cut || echo healed)"
}

cmd_list() {
  local d f; d=$(state_dir)
  for f in "$d"/*.env; do [ -f "$f" ] && basename "$f" .env; done
  return 0
}

case $cmd in
  up) [ ${#pos[@]} -eq 0 ] || die "up: unexpected argument '${pos[0]}'"; cmd_up ;;
  down) cmd_down ;;
  exec) cmd_exec ;;
  each) cmd_each ;;
  _node) cmd_node ;;
  status) cmd_status ;;
  info) cmd_info ;;
  cut|heal) cmd_link ;;
  list) cmd_list ;;
  help) usage ;;
  *) die "unknown command '$cmd' (see --help)" ;;
esac
