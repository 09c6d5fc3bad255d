#!/usr/bin/env bash
# Builds tern and runs its test suite: the README's test command, and what CI runs.
#
#   scripts/test.sh                 dependencies, then the 'default' preset (optimized, -Werror)
#   scripts/test.sh asan tsan fuzz  any presets from CMakePresets.json, in order
#   scripts/test.sh --ci            default, asan (ASan+UBSan), tsan, fuzz: what .ci/run uses
#
# GPU tests (label gpu) skip themselves without a GPU; on a GPU machine use scripts/gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(default)
[ "${presets[0]}" = "--ci" ] && presets=(default asan tsan fuzz)

scripts/install-deps.sh
jobs=$(nproc)
for preset in "${presets[@]}"; do
  echo "=== tern: preset '$preset' ==="
  start=$(date +%s)
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
  echo "=== tern: preset '$preset' passed in $(( $(date +%s) - start )) s ==="
done
