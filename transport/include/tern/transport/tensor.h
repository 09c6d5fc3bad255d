// Where an allreduce's tensor lives, and the three things the collective engine does with it.
//
// The engine (collective.h) reaches the tensor only through this interface: it encodes pipeline
// chunks of it (the reduce-scatter's sends), reads this rank's own shard as fp32 (the reduction,
// which runs on the host over 1/N of the tensor), and decodes the allgather's chunks into it. So
// one pipeline serves host memory (host_tensor(): the CPU codecs in place) and GPU memory
// (cuda_tensor.h: the kernels/ CUDA codecs on the device, only packed chunks crossing to the host).
// Every implementation produces the bytes and values of the CPU scalar reference, so ranks whose
// tensors live in different kinds of memory still end bit-identical.
//
// Concurrency contract: a Tensor is used by one thread at a time (the thread running the
// allreduce); the memory it refers to must stay valid, and must not be read or written by anyone
// else, until the allreduce returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "tern/common/status.h"
#include "tern/kernels/codec.h"

namespace tern::collective {

class Tensor {
 public:
  virtual ~Tensor() = default;

  virtual kernels::DType dtype() const noexcept = 0;
  virtual std::size_t count() const noexcept = 0;
  /// The first element's address (host or device virtual address): operations on overlapping
  /// tensors are never run at once.
  virtual const void* address() const noexcept = 0;

  /// Encodes elements [begin, begin + n) into `out` (host memory, exactly encoded_size() bytes)
  /// with `options`. For error-feedback codecs `residual` (host memory, n floats) is read by the
  /// encoder and then updated with what the chunk loses (kernels::residual_update); otherwise it
  /// is null. Errors as kernels::encode (kNonFinite for NaN/Inf input, ...).
  virtual Status encode(std::size_t begin, std::size_t n, float* residual, const kernels::EncodeOptions& options,
                        std::span<std::uint8_t> out) = 0;

  /// Writes widen(element[i]) for i in [begin, begin + n) to `out` (host memory, n floats).
  virtual Status widen(std::size_t begin, std::size_t n, float* out) = 0;

  /// Decodes `chunk` (host memory, a chunk the engine has validated) into elements [begin, begin + n).
  /// Errors as kernels::decode.
  virtual Status decode(std::span<const std::uint8_t> chunk, std::size_t begin, std::size_t n) = 0;
};

/// `count` elements of `dtype` in host memory at `data` (the CPU codecs, in place).
std::unique_ptr<Tensor> host_tensor(void* data, kernels::DType dtype, std::size_t count);

/// A tensor of `count` elements whose every operation fails with `reason` (not OK). A rank that
/// cannot provide its input (e.g. ternd's local step failed) still joins the allreduce with it, so
/// that the operation fails promptly on every rank with that reason, naming this rank, instead of
/// leaving the peers to wait for a rank that never comes. (An empty tensor has nothing to fail:
/// with `count` 0 the operation completes.)
std::unique_ptr<Tensor> failing_tensor(kernels::DType dtype, std::size_t count, Status reason);

}  // namespace tern::collective
