// The codec library on an NVIDIA GPU: the operations of codec.h on device memory, asynchronous on a
// CUDA stream, producing exactly the bytes and floats of the CPU scalar reference (cpu/scalar.cc)
// for the same inputs, options and seed: chunk header, scales, codes and zero padding included.
//
// Usage:
//
//   if (Status s = cuda::device_available(); !s) { /* kUnavailable: no GPU, say s.message() */ }
//   TERN_ASSIGN_OR_RETURN(cuda::Workspace ws, cuda::Workspace::create());  // once per stream/thread
//   TERN_CHECK(cuda::encode_async(ws, d_grad, DType::kF32, n, d_residual, options, d_chunk, capacity, stream));
//   ... enqueue more work on `stream` if you like ...
//   EncodeReport report;
//   Status s = ws.finish(&report);   // waits for the encode only; kNonFinite etc. as the CPU encode()
//
// or the synchronous forms (encode(), decode(), ...), which are *_async followed by finish().
//
// Memory. Every data pointer is a device pointer: memory from cudaMalloc/cudaMallocAsync, managed
// memory, mapped pinned host memory, or (on systems with pageable memory access, e.g. Grace Hopper)
// any host memory; each call checks this with cudaPointerGetAttributes and rejects plain host
// memory with kInvalidArgument. Tensors (input, residual, decode output, accumulator) must be
// aligned to their element size (4 bytes for fp32, 2 for fp16/bf16); 16-byte aligned tensors take
// the vectorized path. Chunks may have any alignment (misaligned chunks take a slower path).
// Output buffers must not overlap any input buffer (no in-place use). Buffer sizes cannot be
// checked on the device: the caller guarantees that `count` elements (or `out_capacity` /
// `chunk.bytes` bytes) are addressable.
//
// Errors. Argument errors (kInvalidArgument), malformed chunk headers (kCorruptData) and CUDA
// runtime errors found while enqueueing are returned by the *_async call itself; nothing is
// enqueued then and the workspace stays idle. Everything the kernels find (non-finite inputs,
// cast overflows, block scales overflowing fp32, invalid codes: ternary 0b10 or NaN/Inf in a
// cast chunk, bad scales, non-zero unused bits or padding) is returned by finish(),
// with the same Status code and message the CPU function gives for the same bytes. CUDA runtime
// errors become Status with cudaGetErrorName/cudaGetErrorString in the message: kUnavailable when
// no usable GPU or memory is available, kInternal otherwise (a failed kernel, e.g. from a bad
// device pointer, leaves the CUDA context unusable, as with any CUDA error of that kind).
// As on the CPU, on any error the outputs (chunk, decoded tensor, accumulator, residual) hold
// unspecified values; in particular a corrupt chunk may already have been accumulated.
// One deliberate difference in error precedence: the CPU validates the whole chunk before it
// compares the element count with the buffer's, the GPU compares the count on the host first, so a
// chunk that is malformed after its header *and* of the wrong count gives kInvalidArgument (count
// mismatch) here and kCorruptData there. Every single error gives the same Status on both.
//
// Concurrency contract:
//  - A Workspace belongs to the device that was current when it was created; calls that use it
//    must be made with that device current (else kInvalidArgument).
//  - A Workspace holds at most one operation in flight: after a successful *_async call it is
//    pending until finish() returns; another *_async call on it meanwhile fails with
//    kInvalidArgument. Use one Workspace per concurrent operation (e.g. per stream or thread).
//  - A Workspace is not thread-safe (one thread at a time); distinct Workspaces are independent
//    and may be used concurrently from any threads and streams.
//  - finish() waits only for the operation itself (a CUDA event recorded right after its kernel),
//    not for the rest of the stream. Inputs must stay valid and unmodified, and outputs must not
//    be read, until the operation's kernel has run: either after finish() or, on the device, by
//    ordering later work after it on the same stream (stream order is enough for the data; only
//    the Status needs finish()).
//  - Each operation enqueues exactly one kernel plus one event record on the caller's stream: no
//    memset, no copy, no allocation, no synchronization (except decoding a chunk whose header the
//    caller does not pass, see DeviceChunk), so the calls are cheap to pipeline. They are not
//    meant for CUDA graph capture (the tallies are bound to the workspace at enqueue time).
//  - Destroying a Workspace with a pending operation first waits for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "tern/common/status.h"
#include "tern/kernels/codec.h"

struct CUstream_st;  // the CUDA runtime's stream type, so this header needs no CUDA headers

namespace tern::kernels::cuda {

/// Same type as cudaStream_t; nullptr is the default stream (legacy or per-thread, as compiled).
using Stream = ::CUstream_st*;

/// OK when a usable GPU is present: the CUDA driver loads, a device exists, and this build has
/// kernels for the current device. Otherwise kUnavailable with the reason (e.g. "no CUDA driver",
/// cudaErrorInsufficientDriver / cudaErrorNoDevice, or no kernel image for the device's
/// architecture). Cheap enough to call before every test; never aborts the process.
Status device_available();

/// A chunk in device memory (the decoders' input).
struct DeviceChunk {
  const void* data = nullptr;  ///< device pointer to the whole chunk, any alignment
  std::size_t bytes = 0;       ///< its size, header included
  /// Optional host copy of the chunk's first 16 bytes (its header). The header is validated on the
  /// host before anything is launched (magic, version, codec, block size, flags, reserved bytes,
  /// element count, payload length vs `bytes`), so when this is null the decoder copies it from
  /// the device and synchronizes `stream` to do so. Pass it to keep the call asynchronous.
  /// The rest of parse_chunk()'s checks (scales finite and non-negative, unused code bits and
  /// padding zero) and the ternary code check run on the device and are reported by finish().
  const std::uint8_t* host_header = nullptr;
};

/// Device-side tallies (non-finite count and first index, invalid codes, overflows, chunk
/// validation flags) plus a pinned host mirror and a completion event, so that no call allocates.
/// Create one per concurrent operation; see the concurrency contract above.
class Workspace {
 public:
  /// Allocates on the current device. kUnavailable without a usable GPU (see device_available()).
  static Result<Workspace> create();

  Workspace(Workspace&& other) noexcept;
  Workspace& operator=(Workspace&& other) noexcept;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace();  ///< waits for a pending operation, then frees everything

  /// True between a successful *_async call and the end of finish().
  bool pending() const noexcept;
  /// The device this workspace was created on.
  int device() const noexcept;

  /// Waits for the pending operation and returns its Status, exactly as the CPU function would:
  /// encode: kNonFinite with count and first index (and `report` filled as by the CPU encode());
  /// decoders: kCorruptData (bad scale, non-zero unused bits or padding, invalid ternary codes),
  /// kNonFinite (overflow of the output dtype). A CUDA error while waiting becomes its Status.
  /// `report` is written for encode operations only (reset otherwise). kInvalidArgument when
  /// nothing is pending. The workspace is idle afterwards, whatever the result.
  Status finish(EncodeReport* report = nullptr);

  struct Impl;                             // internal
  Impl* impl() noexcept { return impl_.get(); }  // internal; null only in a moved-from Workspace
  explicit Workspace(std::unique_ptr<Impl> impl) noexcept;  // internal: use create()

 private:
  std::unique_ptr<Impl> impl_;
};

/// encode() of codec.h on the GPU: writes the whole chunk (header, scales, codes, padding) to
/// `out`, a device buffer of `out_capacity` >= encoded_size() bytes. Same argument rules as the
/// CPU encode() (residual only for ternary-ef / sign-ef, and never written), plus the memory rules
/// above. The chunk bytes equal the CPU's for the same input, residual and options.
Status encode_async(Workspace& ws, const void* input, DType dtype, std::size_t count, const float* residual,
                    const EncodeOptions& options, void* out, std::size_t out_capacity, Stream stream);

/// decode() of codec.h: `out_count` elements of `out_dtype` into `out` (must equal the chunk's count).
Status decode_async(Workspace& ws, const DeviceChunk& chunk, void* out, DType out_dtype, std::size_t out_count,
                    Stream stream);

/// decode_accumulate() of codec.h: acc[i] = acc[i] + decoded[i] in fp32 for every element.
Status decode_accumulate_async(Workspace& ws, const DeviceChunk& chunk, float* acc, std::size_t acc_count,
                               Stream stream);

/// residual_update() of codec.h: residual[i] = (widen(input[i]) + residual[i]) - decoded[i];
/// error-feedback codecs only.
Status residual_update_async(Workspace& ws, const DeviceChunk& chunk, const void* input, DType dtype,
                             std::size_t count, float* residual, Stream stream);

/// data[i] = data[i] * factor for `count` fp32 values in device memory: one round-to-nearest-even
/// multiplication each, the CPU's `x *= factor` bit for bit (e.g. a mean's 1/n). Enqueues one
/// kernel on `stream` and needs no workspace (it cannot find anything to report); the data is
/// ready in stream order. Errors: kInvalidArgument (null or misaligned data, host memory),
/// kInternal for a launch error.
Status scale_async(float* data, std::size_t count, float factor, Stream stream);

/// Synchronous forms: the *_async call followed by ws.finish().
Status encode(Workspace& ws, const void* input, DType dtype, std::size_t count, const float* residual,
              const EncodeOptions& options, void* out, std::size_t out_capacity, Stream stream,
              EncodeReport* report = nullptr);
Status decode(Workspace& ws, const DeviceChunk& chunk, void* out, DType out_dtype, std::size_t out_count,
              Stream stream);
Status decode_accumulate(Workspace& ws, const DeviceChunk& chunk, float* acc, std::size_t acc_count, Stream stream);
Status residual_update(Workspace& ws, const DeviceChunk& chunk, const void* input, DType dtype, std::size_t count,
                       float* residual, Stream stream);

}  // namespace tern::kernels::cuda
