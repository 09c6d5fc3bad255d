// Tensors in GPU memory for the collective engine (tensor.h): the kernels/ CUDA codecs run on the
// device, in place on the tensor, and only the packed chunks cross PCIe, through host memory, to
// the transport. Per pipeline chunk:
//  - reduce-scatter send: encode on the GPU into a device chunk, copy the packed bytes to the host
//    (for error-feedback codecs the chunk's residual goes up, and its update comes back, too);
//  - reduction of this rank's shard (1/N of the tensor): its values are copied to the host and
//    summed there with the peers' chunks by the CPU codecs, as for a host tensor;
//  - allgather: each arriving chunk is copied to the GPU and decoded there into the tensor.
// The bytes and values are the CPU scalar reference's (cuda_codec.h), so GPU and host ranks of one
// group end bit-identical.
//
// Not (yet) done: handing device chunks to UCX directly when it reports CUDA memory support
// (GPUDirect RDMA); overlapping a chunk's copies with the next chunk's kernels (each call waits
// for its own stream work).
//
// Concurrency contract: a CudaScratch is used by one tensor, and one thread, at a time. A Tensor
// from cuda_tensor() follows tensor.h's contract.
#pragma once

#include <cstddef>
#include <memory>

#include "tern/common/status.h"
#include "tern/transport/tensor.h"

namespace tern::collective {

/// Whether this build has the CUDA codecs (TERN_CUDA). Without them, CudaScratch::create() is
/// kUnavailable with a message that says so.
bool cuda_tensors_built() noexcept;

/// A CUDA stream, a codec workspace and device chunk buffers on one GPU, kept across operations so
/// that an allreduce on a GPU tensor allocates nothing once the buffers have grown to its chunks.
class CudaScratch {
 public:
  /// On GPU `device`. kUnavailable without a usable GPU or without CUDA in this build;
  /// kInvalidArgument when the device does not exist.
  static Result<std::unique_ptr<CudaScratch>> create(int device);
  ~CudaScratch();
  CudaScratch(const CudaScratch&) = delete;
  CudaScratch& operator=(const CudaScratch&) = delete;

  int device() const noexcept;

  struct Impl;                                             // internal
  Impl& impl() noexcept { return *impl_; }                 // internal
  explicit CudaScratch(std::unique_ptr<Impl> impl) noexcept;  // internal: use create()

 private:
  std::unique_ptr<Impl> impl_;
};

/// `count` elements of `dtype` at `device_data`: memory of `scratch`'s GPU (cudaMalloc'ed, managed,
/// or another process's allocation opened with cudaIpcOpenMemHandle), aligned to the element
/// size. kInvalidArgument when the pointer is not device memory of that GPU. `scratch` must
/// outlive the tensor. The caller guarantees that `count` elements are addressable (a device
/// allocation's size cannot be checked from a pointer into it).
Result<std::unique_ptr<Tensor>> cuda_tensor(void* device_data, kernels::DType dtype, std::size_t count,
                                            CudaScratch& scratch);

}  // namespace tern::collective
