// Steps 1, 3 and 4 of ternd's hierarchical allreduce (tern/daemon/hierarchical.h) on the GPU, for
// a group whose local trainers all hand over GPU buffers: the local sum, the mean's scaling and the
// narrowing run on local rank 0's GPU with the kernels/ CUDA codecs, so the trainers' buffers never
// cross to the host whole; the inter-node step runs the engine on the fp32 sum in place
// (collective::cuda_tensor). Buffers on other GPUs are copied over piece by piece
// (cudaMemcpyPeerAsync, over NVLink/PCIe peer access where the system has it).
//
// Arithmetic, and so bits, are the host path's: each local buffer is widened exactly (encoded with
// its own cast codec, which is lossless, then decoded or decode-accumulated into fp32) and added
// in local-rank order with one fp32 rounding per addition; the mean is one multiplication by the
// host's 1.0f / nranks; the narrowing rounds to nearest even and fails on overflow, as
// narrow_from_f32 does.
//
// Thread safety: one operation at a time (the group's executor).
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "tern/common/status.h"
#include "tern/kernels/codec.h"
#include "tern/transport/collective.h"
#include "tern/transport/cuda_tensor.h"

namespace tern::daemon {

class GpuLocalReduce {
 public:
  struct Buffer {
    void* data = nullptr;  ///< device pointer
    int device = 0;        ///< its GPU
  };

  /// Works on GPU `device` (local rank 0's). kUnavailable without CUDA or without a usable GPU.
  static Result<std::unique_ptr<GpuLocalReduce>> create(int device);
  ~GpuLocalReduce();
  GpuLocalReduce(const GpuLocalReduce&) = delete;
  GpuLocalReduce& operator=(const GpuLocalReduce&) = delete;

  int device() const noexcept;

  /// Step 1: the fp32 sum of `inputs` (`count` elements of `dtype` each, local-rank order) in
  /// device memory of device(); valid until the next sum().
  Result<float*> sum(std::span<const Buffer> inputs, kernels::DType dtype, std::size_t count);

  /// Steps 3 and 4 on the last sum() (which the mean scales in place): narrows it into every output.
  Status finish(collective::ReduceOp op, int nranks, kernels::DType dtype, std::size_t count,
                std::span<const Buffer> outputs);

  /// Scratch for the engine's cuda_tensor() over the sum.
  collective::CudaScratch& engine_scratch();

  struct Impl;  // internal

 private:
  explicit GpuLocalReduce(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::daemon
