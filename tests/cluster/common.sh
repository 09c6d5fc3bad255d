# shellcheck shell=bash
# Shared by the emulated-cluster tests (label netns). Source it; it defines:
#   root, cluster, netns_preflight (exits 77 = SKIP when namespaces can't be made),
#   reap_stale TAG (removes clusters left by killed earlier runs of a test),
#   reachable FROM_NODE ADDR (ping if installed, else a TCP probe), pass/fail/finish.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cluster=$root/scripts/cluster.sh
failures=0

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
finish() {
  if [ "$failures" -eq 0 ]; then echo "all checks passed"; return 0; fi
  echo "$failures check(s) failed" >&2
  return 1
}

# SKIP (77) only when this process can't build a cluster: not root, or no network namespaces,
# veth or bridges (e.g. an unprivileged container).
netns_preflight() {
  local tag=$1
  if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root (network namespaces)"; exit 77; fi
  local ok=1
  ip netns add "$tag-pf" 2>/dev/null || ok=0
  if [ $ok -eq 1 ]; then
    ip -n "$tag-pf" link add "$tag-pa" type veth peer name "$tag-pb" 2>/dev/null || ok=0
    ip -n "$tag-pf" link add "$tag-pc" type bridge 2>/dev/null || ok=0
    ip netns del "$tag-pf" 2>/dev/null || true
  fi
  if [ $ok -eq 0 ]; then
    echo "SKIP: cannot create network namespaces / veth / bridge here (unprivileged container?)"
    exit 77
  fi
}

# Clusters of earlier runs of this test (prefix TAG<pid>) whose process is gone: remove them.
reap_stale() {
  local tag=$1 p pid
  for p in $("$cluster" list); do
    case $p in
      "$tag"[0-9]*) pid=${p#"$tag"}
        if ! kill -0 "$pid" 2>/dev/null; then
          echo "removing stale cluster '$p' of an earlier killed run"
          "$cluster" --prefix "$p" down >/dev/null || true
        fi ;;
    esac
  done
}

# reachable PREFIX FROM ADDR: true if node FROM reaches ADDR within ~2 s. With ping: one echo
# (-c 1 -W 2). Without (iputils-ping is not a dependency): a TCP connect to a closed port, where
# "connection refused" (an RST came back) proves the path works, and a timeout means it doesn't.
reachable() {
  local prefix=$1 from=$2 addr=$3 out rc=0
  if command -v ping >/dev/null; then
    "$cluster" --prefix "$prefix" exec "$from" -- ping -n -q -c 1 -W 2 "$addr" >/dev/null 2>&1
    return
  fi
  out=$(LC_ALL=C timeout -k 1 2 "$cluster" --prefix "$prefix" exec "$from" -- \
    bash -c "exec 3<>/dev/tcp/$addr/9" 2>&1) || rc=$?
  [ $rc -eq 0 ] && return 0
  case $out in *"Connection refused"*) return 0 ;; esac
  return 1
}

# Waits (bounded, ~tries/10 s) until "$@" succeeds.
eventually() {
  local tries=$1 i; shift
  for ((i = 0; i < tries; i++)); do "$@" && return 0; sleep 0.1; done
  return 1
}

# Names in the root namespace / namespaces that carry PREFIX.
leftovers() {
  local p=$1
  { ip netns list | awk '{print $1}' | grep -E "^$p-" || true
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^$p-" || true
    "$cluster" --prefix "$p" info >/dev/null 2>&1 && echo "state-file"
    true; } | tr '\n' ' '
}
