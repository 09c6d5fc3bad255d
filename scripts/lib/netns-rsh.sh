#!/usr/bin/env bash
# An "ssh" for OpenMPI's rsh launcher inside an emulated cluster (scripts/cluster.sh):
#   mpirun --mca plm_rsh_agent scripts/lib/netns-rsh.sh --mca plm_rsh_no_tree_spawn 1 ...
# Called as: netns-rsh.sh [ssh options...] HOST COMMAND...; HOST is a node address 10.77.0.(K+1)
# or a node name P-nK. Like ssh, it joins COMMAND's words with spaces and runs them with /bin/sh,
# here in node K (its network namespace, hostname P-nK). Prefix P: $TERN_CLUSTER_PREFIX (set
# by cluster.sh exec), default "tern".
set -euo pipefail
prefix=${TERN_CLUSTER_PREFIX:-tern}
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done   # ssh-style options: ignored
[ $# -ge 2 ] || { echo "netns-rsh.sh: usage: netns-rsh.sh HOST COMMAND..." >&2; exit 255; }
host=$1; shift
case $host in
  10.77.0.*) k=$(( ${host##*.} - 1 )) ;;
  "$prefix"-n*) k=${host#"$prefix"-n} ;;
  *) echo "netns-rsh.sh: unknown host '$host' (expected 10.77.0.X or $prefix-nK)" >&2; exit 255 ;;
esac
exec "$(dirname "$0")/../cluster.sh" --prefix "$prefix" exec "$k" -- /bin/sh -c "$*"
