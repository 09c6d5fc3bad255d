#!/usr/bin/env bash
# Builds the MPI baseline (mpi_allreduce) with mpicc, outside CMake (CMake stays free of MPI).
#   tools/baselines/build.sh [OUTDIR]      default OUTDIR: build/baselines; prints the binary's path
# Rebuilds only when the source is newer than the binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/baselines}
command -v mpicc >/dev/null || { echo "build.sh: mpicc not found (install libopenmpi-dev)" >&2; exit 1; }
mkdir -p "$out"
src=$here/mpi_allreduce.c bin=$out/mpi_allreduce
if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
  mpicc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -o "$bin.tmp" "$src"
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
