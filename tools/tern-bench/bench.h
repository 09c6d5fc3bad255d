// tern-bench's measurement loop, shared by every way of forming a group (threads over loopback,
// processes over UCX). Modelled on nccl-tests' all_reduce_perf.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tern/transport/collective.h"

namespace tern::bench {

struct BenchConfig {
  std::size_t min_bytes = 8, max_bytes = 64u << 20;
  std::size_t step_factor = 2;
  std::vector<std::size_t> sizes;  ///< explicit sizes in bytes; when set, replaces min/max/step
  int warmup = 2, iters = 5;
  std::vector<kernels::Codec> codecs = {kernels::Codec::kTernGrad};
  bool gather_same_as_scatter = true;
  kernels::Codec gather_codec = kernels::Codec::kTernGrad;
  kernels::DType dtype = kernels::DType::kF32;
  collective::ReduceOp op = collective::ReduceOp::kSum;
  std::uint32_t block_size = kernels::kDefaultBlockSize;
  bool check = true;
  std::chrono::milliseconds timeout{30000};
  std::string json_path;
};

/// One row of the table.
struct BenchRow {
  std::size_t bytes = 0, count = 0;
  std::string codec, dtype, redop;
  double time_us = 0, time_us_mean = 0;
  double algbw = 0, busbw = 0;       ///< GB/s (1e9), nccl-tests formulas
  std::uint64_t wire_bytes = 0;      ///< bytes this rank sent per operation
  double x_fp32 = 0;                 ///< fp32 reduce-scatter+allgather bytes / wire_bytes
  long long wrong = -1;              ///< elements differing from the reference; -1: not checked
};

/// Deterministic input of `rank` for a tensor of `count` elements: uniform in [-2, 2) from Philox
/// keyed by (rank, count), converted to the dtype. Any rank can regenerate any other's input.
std::vector<std::uint8_t> make_input(int rank, std::size_t count, kernels::DType dtype);

/// Runs the whole sweep on this rank. Every rank of the group calls it with the same config.
/// Returns the rows (meaningful on every rank; rank 0 prints them). Stops at the first error.
Result<std::vector<BenchRow>> run_sweep(collective::Communicator& comm, const BenchConfig& config);

void print_header(const BenchConfig& config, int ranks, const std::string& transport);
void print_row(const BenchRow& row);
Status write_json(const std::string& path, const BenchConfig& config, int ranks, const std::string& transport,
                  const std::vector<BenchRow>& rows);

}  // namespace tern::bench
