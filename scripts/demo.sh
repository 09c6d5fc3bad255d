#!/usr/bin/env bash
# The README's first command: installs dependencies, builds tern, and runs its main job on a
# built-in default. Today that is the codec benchmark: every codec's encode and decode-accumulate
# throughput next to memcpy of the same buffer, as a ratio table.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target tern-codec-bench
exec build/default/bin/tern-codec-bench --quick "$@"
