#!/usr/bin/env bash
# Installs everything tern needs to build and test on Debian 12, from Debian's own repositories.
# Idempotent: when every package is already present it changes nothing and needs no network.
# CUDA is optional and never installed here: with nvcc at /usr/local/cuda (or on PATH) the build
# adds the GPU kernels, without it the build is CPU-only and says so.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes for the fuzz preset
  # transport: UCX, TCP bootstrap (Boost.Asio), HMAC (OpenSSL), logging, CLI, JSON
  libucx-dev ucx-utils libboost-dev libssl-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  # emulated cluster and the baselines tern is measured against (OpenMPI, torch.distributed gloo)
  iproute2 iperf3 openmpi-bin libopenmpi-dev python3 python3-torch python3-numpy
  # ib-bench: verbs (compile-tested here), hwloc topology
  libibverbs-dev libhwloc-dev hwloc
  python3-jsonschema   # ib-bench's test validates its --json output against the shipped schema
  # ternd/libtern: config (TOML), systemd notify/watchdog and unit checks, Python bindings
  libtoml11-dev libsystemd-dev systemd pybind11-dev python3-dev
  # the training demo: the digits data set, plots; an optimized BLAS for torch's CPU matmuls (Debian's
  # python3-torch uses the system libblas.so.3, whose reference implementation is ~6x slower)
  python3-sklearn python3-matplotlib libopenblas0-pthread
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
