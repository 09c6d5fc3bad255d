// Host side of the CUDA codecs (cuda_codec.h): argument validation mirroring codec.cc, chunk header
// validation mirroring parse_chunk(), workspaces, and the translation of device tallies into the
// same Status the CPU functions return (same codes, same messages).
//
// Tallies without memsets: a workspace owns two DeviceTally slots. A launch adds into slot s (zero
// on entry) and its first thread zeroes slot 1-s for the next launch. This is safe because the
// next launch on this workspace can only be enqueued after finish() has seen this one complete.
#include "decode_status.h"
#include "tern/kernels/cuda_codec.h"
#include "tern/kernels/cuda_support.h"

#include <cuda_runtime.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "codec_kernels.cuh"
#include "tern/kernels/wire_format.h"

namespace tern::kernels::cuda {

namespace {

using detail::DecodeOp;
using detail::DecodeParams;
using detail::DeviceTally;
using detail::EncodeParams;

bool valid_dtype(DType dtype) { return static_cast<unsigned>(dtype) < 3; }

// ---- messages: identical to codec.cc / wire_format.cc -----------------------------------------

std::string nonfinite_message(std::size_t count, std::size_t first, Codec codec) {
  std::string msg = std::to_string(count) + " non-finite value" + (count == 1 ? "" : "s") +
                    " (NaN/Inf in the input or residual, a block scale overflowing fp32";
  if (codec == Codec::kFp16 || codec == Codec::kBf16) msg += ", or overflow of " + std::string(codec_name(codec));
  msg += "), first at element " + std::to_string(first) + "; nothing was encoded";
  return msg;
}

Status decode_status(const DeviceTally& tally, DType out_dtype) {
  // parse_chunk()'s order: scales, unused bits, padding; then the decoders' tallies.
  if (tally.corrupt_scales)
    return corrupt_data("chunk scale " + std::to_string(~tally.corrupt_scale_first_inv) + " is negative or not finite");
  if (tally.bad_unused_bits) return corrupt_data("chunk has non-zero bits after its last code");
  if (tally.bad_padding) return corrupt_data("chunk has non-zero padding");
  return decode_tally_status(tally.invalid_codes, tally.overflows, out_dtype);
}

Result<ChunkView> parse_header(const std::uint8_t* p, std::size_t size) { return parse_chunk_header(p, size); }

bool aligned(const void* p, std::uintptr_t alignment) {
  return (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0;
}

enum class OpKind { kEncode, kDecode };

}  // namespace

// ---- workspace ----------------------------------------------------------------------------------

struct Workspace::Impl {
  int device = -1;
  bool pageable_access = false;  // the device can read plain host memory (HMM/ATS)
  DeviceTally* d_tally = nullptr;     // 2 slots
  DeviceTally* h_tally = nullptr;     // pinned mirror of one slot
  std::uint8_t* h_header = nullptr;   // pinned, 16 bytes: a chunk header read back from the device
  cudaEvent_t done = nullptr;         // recorded after each launch
  cudaStream_t copy_stream = nullptr; // non-blocking, private: reads the tally back in finish()
  unsigned next_slot = 0;

  // The pending operation.
  bool pending = false;
  bool launched = false;
  unsigned slot = 0;
  OpKind kind = OpKind::kEncode;
  Codec codec = Codec::kFp32;
  DType status_dtype = DType::kF32;  // the dtype overflows are reported for
  std::size_t chunk_bytes = 0;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (pending && launched) (void)cudaEventSynchronize(done);
    if (copy_stream) (void)cudaStreamDestroy(copy_stream);
    if (done) (void)cudaEventDestroy(done);
    if (h_tally) (void)cudaFreeHost(h_tally);
    if (d_tally) (void)cudaFree(d_tally);
  }

  /// Checks that a new operation may start on this workspace.
  Status ready() const {
    if (pending) return invalid_argument("the workspace has a pending operation: call finish() first");
    int current = -1;
    TERN_CUDA_CHECK(cudaGetDevice(&current), "cudaGetDevice");
    if (current != device)
      return invalid_argument("the workspace belongs to CUDA device " + std::to_string(device) +
                              " but device " + std::to_string(current) + " is current");
    return Status::ok();
  }

  /// Rejects pointers the current device cannot dereference.
  Status check_pointer(const void* p, const char* what) const {
    cudaPointerAttributes attributes{};
    const cudaError_t error = cudaPointerGetAttributes(&attributes, p);
    if (error != cudaSuccess) return cuda_status(error, std::string("cudaPointerGetAttributes(") + what + ")");
    switch (attributes.type) {
      case cudaMemoryTypeDevice:
        if (attributes.device != device)
          return invalid_argument(std::string(what) + " is memory of CUDA device " + std::to_string(attributes.device) +
                                  ", the workspace's device is " + std::to_string(device));
        return Status::ok();
      case cudaMemoryTypeManaged: return Status::ok();
      case cudaMemoryTypeHost:
        if (attributes.devicePointer != nullptr) return Status::ok();
        break;
      default:
        if (pageable_access) return Status::ok();
        break;
    }
    return invalid_argument(std::string(what) +
                            " is host memory the GPU cannot access (pass device, managed or mapped pinned memory)");
  }

  /// Enqueues one launch (already bound to slot next_slot) and the completion event.
  Status launched_ok(cudaError_t launch_error, cudaStream_t stream, OpKind op_kind) {
    if (launch_error != cudaSuccess) return cuda_status(launch_error, "kernel launch");
    const cudaError_t record_error = cudaEventRecord(done, stream);
    slot = next_slot;
    next_slot ^= 1u;  // the kernel zeroes the other slot
    kind = op_kind;
    launched = true;
    pending = true;
    if (record_error != cudaSuccess) {
      // The kernel is enqueued but cannot be waited for by event: wait for the stream instead.
      (void)cudaStreamSynchronize(stream);
      pending = false;
      return cuda_status(record_error, "cudaEventRecord");
    }
    return Status::ok();
  }
};

Workspace::Workspace(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Workspace::Workspace(Workspace&& other) noexcept = default;
Workspace& Workspace::operator=(Workspace&& other) noexcept = default;
Workspace::~Workspace() = default;

bool Workspace::pending() const noexcept { return impl_ && impl_->pending; }
int Workspace::device() const noexcept { return impl_ ? impl_->device : -1; }

Result<Workspace> Workspace::create() {
  TERN_CHECK(device_available());
  auto impl = std::make_unique<Impl>();
  TERN_CUDA_CHECK(cudaGetDevice(&impl->device), "cudaGetDevice");
  int pageable = 0;
  TERN_CUDA_CHECK(cudaDeviceGetAttribute(&pageable, cudaDevAttrPageableMemoryAccess, impl->device),
                  "cudaDeviceGetAttribute");
  impl->pageable_access = pageable != 0;
  TERN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&impl->d_tally), 2 * sizeof(DeviceTally)), "cudaMalloc");
  void* host = nullptr;
  TERN_CUDA_CHECK(cudaMallocHost(&host, sizeof(DeviceTally) + kChunkHeaderBytes), "cudaMallocHost");
  impl->h_tally = static_cast<DeviceTally*>(host);
  impl->h_header = static_cast<std::uint8_t*>(host) + sizeof(DeviceTally);
  TERN_CUDA_CHECK(cudaEventCreateWithFlags(&impl->done, cudaEventDisableTiming), "cudaEventCreate");
  TERN_CUDA_CHECK(cudaStreamCreateWithFlags(&impl->copy_stream, cudaStreamNonBlocking), "cudaStreamCreate");
  // Both slots start at zero; the memset completes before any launch can use them.
  TERN_CUDA_CHECK(cudaMemsetAsync(impl->d_tally, 0, 2 * sizeof(DeviceTally), impl->copy_stream), "cudaMemsetAsync");
  TERN_CUDA_CHECK(cudaStreamSynchronize(impl->copy_stream), "cudaStreamSynchronize");
  return Workspace(std::move(impl));
}

Status Workspace::finish(EncodeReport* report) {
  if (report) *report = EncodeReport{};
  if (!impl_) return invalid_argument("finish() on a moved-from workspace");
  Impl& ws = *impl_;
  if (!ws.pending) return invalid_argument("finish(): no operation is pending on this workspace");
  ws.pending = false;
  if (!ws.launched) return Status::ok();  // nothing to do (an empty decode)
  TERN_CUDA_CHECK(cudaEventSynchronize(ws.done), "waiting for the codec kernel");
  TERN_CUDA_CHECK(cudaMemcpyAsync(ws.h_tally, ws.d_tally + ws.slot, sizeof(DeviceTally), cudaMemcpyDeviceToHost,
                                  ws.copy_stream),
                  "reading the codec tallies");
  TERN_CUDA_CHECK(cudaStreamSynchronize(ws.copy_stream), "reading the codec tallies");
  const DeviceTally tally = *ws.h_tally;
  if (ws.kind == OpKind::kEncode) {
    // As codec.cc: non-finite inputs first; only without them, overflowing block scales.
    const bool inputs = tally.nonfinite_count != 0;
    if (inputs || tally.bad_scale_count) {
      const auto count = static_cast<std::size_t>(inputs ? tally.nonfinite_count : tally.bad_scale_count);
      const auto first = static_cast<std::size_t>(inputs ? ~tally.nonfinite_first_inv : ~tally.bad_scale_first_inv);
      if (report) {
        report->nonfinite_count = count;
        report->first_nonfinite = first;
      }
      return non_finite(nonfinite_message(count, first, ws.codec));
    }
    if (report) report->bytes = ws.chunk_bytes;
    return Status::ok();
  }
  return decode_status(tally, ws.status_dtype);
}

// ---- device check -------------------------------------------------------------------------------

Status device_available() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) return unavailable(cuda_status(error, "no usable CUDA GPU: cudaGetDeviceCount").message());
  if (count == 0) return unavailable("no usable CUDA GPU: cudaGetDeviceCount found no device");
  int device = 0;
  TERN_CUDA_CHECK(cudaGetDevice(&device), "cudaGetDevice");
  const cudaError_t probe = detail::probe_kernel_image();
  if (probe != cudaSuccess) {
    int major = 0, minor = 0;
    (void)cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    (void)cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    return unavailable(cuda_status(probe, "CUDA device " + std::to_string(device) + " (compute capability " +
                                              std::to_string(major) + "." + std::to_string(minor) +
                                              ") cannot run this build's kernels")
                           .message());
  }
  return Status::ok();
}

// ---- operations ---------------------------------------------------------------------------------

namespace {

Workspace::Impl* impl_of(Workspace& ws) { return ws.impl(); }

/// The host copy of a device chunk's header: the caller's, or read back (synchronizing stream).
Result<const std::uint8_t*> chunk_header(Workspace::Impl& ws, const DeviceChunk& chunk, cudaStream_t stream) {
  if (chunk.host_header) return chunk.host_header;
  TERN_CUDA_CHECK(cudaMemcpyAsync(ws.h_header, chunk.data, kChunkHeaderBytes, cudaMemcpyDeviceToHost, stream),
                  "reading the chunk header");
  TERN_CUDA_CHECK(cudaStreamSynchronize(stream), "reading the chunk header");
  return static_cast<const std::uint8_t*>(ws.h_header);
}

/// prepare_decode() of codec.cc: header, count, output pointer. Fills everything in params but
/// the output-side fields.
Result<ChunkView> prepare_decode(Workspace::Impl& ws, const DeviceChunk& chunk, std::size_t expected_count,
                                 const void* out, const char* out_name, cudaStream_t stream) {
  if (chunk.bytes >= kChunkHeaderBytes) {
    if (chunk.data == nullptr) return invalid_argument("null chunk pointer");
    TERN_CHECK(ws.check_pointer(chunk.data, "the chunk"));
  }
  const std::uint8_t* header = nullptr;
  if (chunk.bytes >= kChunkHeaderBytes) {
    TERN_ASSIGN_OR_RETURN(header, chunk_header(ws, chunk, stream));
  }
  TERN_ASSIGN_OR_RETURN(ChunkView view, parse_header(header, chunk.bytes));
  if (view.header.count != expected_count)
    return invalid_argument("chunk holds " + std::to_string(view.header.count) + " elements, the buffer " +
                            std::to_string(expected_count));
  if (expected_count != 0 && out == nullptr) return invalid_argument(std::string("null ") + out_name + " buffer");
  return view;
}

DecodeParams decode_params(Workspace::Impl& ws, const DeviceChunk& chunk, const ChunkView& view) {
  DecodeParams p{};
  p.chunk = static_cast<const std::uint8_t*>(chunk.data);
  p.count = view.header.count;
  p.scale_count = view.layout.scale_count;
  p.code_bytes = view.layout.code_bytes;
  p.payload_bytes = view.layout.payload_bytes;
  p.block_log2 = view.header.block_size ? static_cast<std::uint32_t>(std::countr_zero(view.header.block_size)) : 0;
  p.codec = view.header.codec;
  const std::uint8_t* payload = p.chunk + kChunkHeaderBytes;
  p.vec_chunk = view.header.codec == Codec::kFp32 ? aligned(payload, 16) : aligned(payload, 8);
  p.tally = ws.d_tally + ws.next_slot;
  p.next_tally = ws.d_tally + (ws.next_slot ^ 1u);
  return p;
}

Status element_aligned(const void* p, DType dtype, const char* what) {
  if (aligned(p, dtype_size(dtype))) return Status::ok();
  return invalid_argument(std::string(what) + " is not aligned to its " + std::to_string(dtype_size(dtype)) +
                          "-byte elements");
}

/// Marks a decode with nothing to launch (count 0) as pending, so finish() works uniformly.
Status empty_pending(Workspace::Impl& ws, DType status_dtype) {
  ws.pending = true;
  ws.launched = false;
  ws.kind = OpKind::kDecode;
  ws.status_dtype = status_dtype;
  return Status::ok();
}

}  // namespace

Status encode_async(Workspace& workspace, const void* input, DType dtype, std::size_t count, const float* residual,
                    const EncodeOptions& options, void* out, std::size_t out_capacity, Stream stream) {
  Workspace::Impl* ws = impl_of(workspace);
  if (!ws) return invalid_argument("encode on a moved-from workspace");
  TERN_CHECK(ws->ready());
  // The CPU encode()'s checks, in its order.
  TERN_CHECK(validate(options));
  if (!valid_dtype(dtype)) return invalid_argument("unknown input dtype " + std::to_string(static_cast<int>(dtype)));
  if (residual && !codec_uses_error_feedback(options.codec))
    return invalid_argument("codec " + std::string(codec_name(options.codec)) +
                            " takes no residual (error feedback is for ternary-ef and sign-ef)");
  if (count != 0 && input == nullptr) return invalid_argument("null input with a non-zero count");
  TERN_ASSIGN_OR_RETURN(ChunkLayout layout, chunk_layout(options.codec, options.block_size, count));
  if (out_capacity < layout.total_bytes())
    return invalid_argument("output buffer of " + std::to_string(out_capacity) + " bytes is smaller than the " +
                            std::to_string(layout.total_bytes()) + "-byte chunk");
  // The GPU's own rules.
  if (out == nullptr) return invalid_argument("null output buffer");
  TERN_CHECK(ws->check_pointer(out, "the output chunk"));
  if (count != 0) {
    TERN_CHECK(ws->check_pointer(input, "the input"));
    TERN_CHECK(element_aligned(input, dtype, "the input"));
    if (residual) {
      TERN_CHECK(ws->check_pointer(residual, "the residual"));
      TERN_CHECK(element_aligned(residual, DType::kF32, "the residual"));
    }
  }

  const bool scaled = codec_is_block_scaled(options.codec);
  const ChunkHeader header{options.codec, scaled ? options.block_size : 0, options.clip,
                           static_cast<std::uint32_t>(count), static_cast<std::uint32_t>(layout.payload_bytes)};
  std::uint8_t header_bytes[kChunkHeaderBytes];
  write_chunk_header(header, header_bytes);

  EncodeParams p{};
  p.input = input;
  p.residual = count != 0 ? residual : nullptr;
  p.count = count;
  p.chunk = static_cast<std::uint8_t*>(out);
  p.scale_count = layout.scale_count;
  p.code_bytes = layout.code_bytes;
  p.payload_bytes = layout.payload_bytes;
  std::memcpy(p.header, header_bytes, sizeof header_bytes);
  p.seed = options.seed;
  p.stream = options.stream;
  p.element_offset = options.element_offset;
  p.clip_sigmas = options.clip_sigmas;
  p.block_log2 = scaled ? static_cast<std::uint32_t>(std::countr_zero(options.block_size)) : 0;
  p.codec = options.codec;
  p.clip = options.clip;
  p.vec_in = aligned(input, dtype == DType::kF32 ? 16 : 8) && (residual == nullptr || aligned(residual, 16));
  p.vec_out = aligned(p.chunk + kChunkHeaderBytes, options.codec == Codec::kFp32 ? 16 : 8);
  p.tally = ws->d_tally + ws->next_slot;
  p.next_tally = ws->d_tally + (ws->next_slot ^ 1u);

  ws->codec = options.codec;
  ws->chunk_bytes = layout.total_bytes();
  return ws->launched_ok(detail::launch_encode(p, dtype, stream), stream, OpKind::kEncode);
}

Status decode_async(Workspace& workspace, const DeviceChunk& chunk, void* out, DType out_dtype, std::size_t out_count,
                    Stream stream) {
  Workspace::Impl* ws = impl_of(workspace);
  if (!ws) return invalid_argument("decode on a moved-from workspace");
  TERN_CHECK(ws->ready());
  if (!valid_dtype(out_dtype)) return invalid_argument("unknown output dtype");
  TERN_ASSIGN_OR_RETURN(ChunkView view, prepare_decode(*ws, chunk, out_count, out, "output", stream));
  if (view.header.count == 0) return empty_pending(*ws, out_dtype);
  TERN_CHECK(ws->check_pointer(out, "the output"));
  TERN_CHECK(element_aligned(out, out_dtype, "the output"));
  DecodeParams p = decode_params(*ws, chunk, view);
  p.out = out;
  p.vec = aligned(out, out_dtype == DType::kF32 ? 16 : 8);
  const DecodeOp op = out_dtype == DType::kF32   ? DecodeOp::kToF32
                      : out_dtype == DType::kF16 ? DecodeOp::kToF16
                                                 : DecodeOp::kToBf16;
  ws->status_dtype = out_dtype;
  return ws->launched_ok(detail::launch_decode(p, op, stream), stream, OpKind::kDecode);
}

Status decode_accumulate_async(Workspace& workspace, const DeviceChunk& chunk, float* acc, std::size_t acc_count,
                               Stream stream) {
  Workspace::Impl* ws = impl_of(workspace);
  if (!ws) return invalid_argument("decode_accumulate on a moved-from workspace");
  TERN_CHECK(ws->ready());
  TERN_ASSIGN_OR_RETURN(ChunkView view, prepare_decode(*ws, chunk, acc_count, acc, "output", stream));
  if (view.header.count == 0) return empty_pending(*ws, DType::kF32);
  TERN_CHECK(ws->check_pointer(acc, "the accumulator"));
  TERN_CHECK(element_aligned(acc, DType::kF32, "the accumulator"));
  DecodeParams p = decode_params(*ws, chunk, view);
  p.out = acc;
  p.vec = aligned(acc, 16);
  ws->status_dtype = DType::kF32;
  return ws->launched_ok(detail::launch_decode(p, DecodeOp::kAccumulate, stream), stream, OpKind::kDecode);
}

Status residual_update_async(Workspace& workspace, const DeviceChunk& chunk, const void* input, DType dtype,
                             std::size_t count, float* residual, Stream stream) {
  Workspace::Impl* ws = impl_of(workspace);
  if (!ws) return invalid_argument("residual_update on a moved-from workspace");
  TERN_CHECK(ws->ready());
  if (!valid_dtype(dtype)) return invalid_argument("unknown input dtype");
  TERN_ASSIGN_OR_RETURN(ChunkView view, prepare_decode(*ws, chunk, count, residual, "output", stream));
  if (!codec_uses_error_feedback(view.header.codec))
    return invalid_argument("residual_update applies to ternary-ef and sign-ef, not " +
                            std::string(codec_name(view.header.codec)));
  if (count != 0 && input == nullptr) return invalid_argument("null input with a non-zero count");
  if (view.header.count == 0) return empty_pending(*ws, DType::kF32);
  TERN_CHECK(ws->check_pointer(residual, "the residual"));
  TERN_CHECK(element_aligned(residual, DType::kF32, "the residual"));
  TERN_CHECK(ws->check_pointer(input, "the input"));
  TERN_CHECK(element_aligned(input, dtype, "the input"));
  DecodeParams p = decode_params(*ws, chunk, view);
  p.out = residual;
  p.input = input;
  p.vec = aligned(residual, 16) && aligned(input, dtype == DType::kF32 ? 16 : 8);
  const DecodeOp op = dtype == DType::kF32   ? DecodeOp::kResidualF32
                      : dtype == DType::kF16 ? DecodeOp::kResidualF16
                                             : DecodeOp::kResidualBf16;
  ws->status_dtype = DType::kF32;
  return ws->launched_ok(detail::launch_decode(p, op, stream), stream, OpKind::kDecode);
}

// ---- synchronous forms --------------------------------------------------------------------------

Status encode(Workspace& ws, const void* input, DType dtype, std::size_t count, const float* residual,
              const EncodeOptions& options, void* out, std::size_t out_capacity, Stream stream, EncodeReport* report) {
  if (report) *report = EncodeReport{};
  TERN_CHECK(encode_async(ws, input, dtype, count, residual, options, out, out_capacity, stream));
  return ws.finish(report);
}

Status decode(Workspace& ws, const DeviceChunk& chunk, void* out, DType out_dtype, std::size_t out_count,
              Stream stream) {
  TERN_CHECK(decode_async(ws, chunk, out, out_dtype, out_count, stream));
  return ws.finish();
}

Status decode_accumulate(Workspace& ws, const DeviceChunk& chunk, float* acc, std::size_t acc_count, Stream stream) {
  TERN_CHECK(decode_accumulate_async(ws, chunk, acc, acc_count, stream));
  return ws.finish();
}

Status residual_update(Workspace& ws, const DeviceChunk& chunk, const void* input, DType dtype, std::size_t count,
                       float* residual, Stream stream) {
  TERN_CHECK(residual_update_async(ws, chunk, input, dtype, count, residual, stream));
  return ws.finish();
}

}  // namespace tern::kernels::cuda
