#include "tern/daemon/hierarchical.h"

#include <cstring>

#include "tern/kernels/float16.h"
#include "tern/transport/collective_reference.h"

namespace tern::daemon {

void local_sum(std::span<const void* const> inputs, kernels::DType dtype, std::size_t count, float* acc) {
  if (inputs.empty()) return;
  kernels::widen_to_f32(inputs[0], dtype, count, acc);
  if (inputs.size() == 1) return;
  constexpr std::size_t kTile = 4096;  // widen a tile at a time: bounded scratch, cache-resident
  float tmp[kTile];
  const std::size_t elem = kernels::dtype_size(dtype);
  for (std::size_t i = 1; i < inputs.size(); ++i) {
    const auto* in = static_cast<const std::uint8_t*>(inputs[i]);
    for (std::size_t begin = 0; begin < count; begin += kTile) {
      const std::size_t n = std::min(kTile, count - begin);
      kernels::widen_to_f32(in + begin * elem, dtype, n, tmp);
      float* a = acc + begin;
      for (std::size_t j = 0; j < n; ++j) a[j] += tmp[j];
    }
  }
}

void scale_for_mean(float* acc, std::size_t count, collective::ReduceOp op, int nranks) {
  if (op != collective::ReduceOp::kMean) return;
  const float inv = 1.0f / static_cast<float>(nranks);
  for (std::size_t i = 0; i < count; ++i) acc[i] *= inv;
}

Status narrow_from_f32(const float* acc, std::size_t count, kernels::DType dtype, void* out) {
  if (dtype == kernels::DType::kF32) {
    std::memcpy(out, acc, count * sizeof(float));
    return Status::ok();
  }
  const bool half = dtype == kernels::DType::kF16;
  const std::uint16_t inf_bits = half ? 0x7c00 : 0x7f80;  // exponent all ones
  auto* o = static_cast<std::uint16_t*>(out);
  std::size_t overflows = 0;
  for (std::size_t i = 0; i < count; ++i) {
    o[i] = half ? kernels::float_to_fp16(acc[i]) : kernels::float_to_bf16(acc[i]);
    overflows += (o[i] & inf_bits) == inf_bits;  // acc is finite (the engine's result): any Inf/NaN is an overflow
  }
  if (overflows)
    return non_finite(std::to_string(overflows) + " reduced value" + (overflows == 1 ? "" : "s") + " overflow " +
                      std::string(kernels::dtype_name(dtype)));
  return Status::ok();
}

Status finish_result(const float* acc, std::size_t count, collective::ReduceOp op, int nranks, kernels::DType dtype,
                     void* out) {
  if (op != collective::ReduceOp::kMean) return narrow_from_f32(acc, count, dtype, out);
  std::vector<float> scaled(acc, acc + count);
  scale_for_mean(scaled.data(), count, op, nranks);
  return narrow_from_f32(scaled.data(), count, dtype, out);
}

Result<std::vector<std::uint8_t>> hierarchical_reference(
    const std::vector<std::vector<std::vector<std::uint8_t>>>& inputs, std::size_t count,
    const collective::AllreduceOptions& options, const collective::CommunicatorOptions& comm_options,
    std::uint64_t op) {
  if (inputs.empty() || inputs[0].empty()) return invalid_argument("hierarchical_reference: no inputs");
  const std::size_t elem = kernels::dtype_size(options.dtype);
  if (inputs[0].size() == 1) {  // one trainer per node: the engine on the trainers' buffers
    std::vector<std::vector<std::uint8_t>> flat;
    for (const auto& node : inputs) flat.push_back(node.at(0));
    return collective::reference_allreduce(flat, count, options, comm_options, op);
  }
  int nranks = 0;
  std::vector<std::vector<std::uint8_t>> node_sums;
  for (const auto& node : inputs) {
    std::vector<const void*> ptrs;
    for (const auto& b : node) {
      if (b.size() != count * elem) return invalid_argument("hierarchical_reference: an input has the wrong size");
      ptrs.push_back(b.data());
    }
    nranks += static_cast<int>(node.size());
    std::vector<std::uint8_t> sum(count * sizeof(float));
    local_sum(ptrs, options.dtype, count, reinterpret_cast<float*>(sum.data()));
    node_sums.push_back(std::move(sum));
  }
  collective::AllreduceOptions inter = options;
  inter.dtype = kernels::DType::kF32;
  inter.op = collective::ReduceOp::kSum;
  TERN_ASSIGN_OR_RETURN(auto reduced, collective::reference_allreduce(node_sums, count, inter, comm_options, op));
  std::vector<std::uint8_t> out(count * elem);
  TERN_CHECK(
      finish_result(reinterpret_cast<const float*>(reduced.data()), count, options.op, nranks, options.dtype, out.data()));
  return out;
}

}  // namespace tern::daemon
