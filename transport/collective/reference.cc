#include <cstring>

#include "protocol.h"
#include "tern/transport/collective_reference.h"

namespace tern::collective {

Result<std::vector<std::uint8_t>> reference_allreduce(const std::vector<std::vector<std::uint8_t>>& inputs,
                                                      std::size_t count, const AllreduceOptions& options,
                                                      const CommunicatorOptions& comm_options, std::uint64_t op) {
  using kernels::DType;
  const int ranks = static_cast<int>(inputs.size());
  const std::size_t elem = kernels::dtype_size(options.dtype);
  for (const auto& in : inputs)
    if (in.size() != count * elem) return invalid_argument("reference_allreduce: an input has the wrong size");
  auto encode_options = [&](kernels::Codec codec, Phase phase, int rank, std::size_t offset) {
    kernels::EncodeOptions o;
    o.codec = codec;
    o.block_size = options.block_size;
    o.clip = options.clip && codec == kernels::Codec::kTernGrad;
    o.seed = comm_options.seed;
    o.stream = rounding_stream(op, phase, rank);
    o.element_offset = offset;
    return o;
  };
  std::vector<std::uint8_t> result(count * elem);
  const Partition partition(count, ranks, options.block_size, comm_options.pipeline_chunk_elements);
  for (int owner = 0; owner < ranks; ++owner) {
    const std::size_t begin = partition.shard_begin(owner), len = partition.shard_size(owner);
    if (len == 0) continue;
    std::vector<float> acc(len), zeros(len, 0.0f);
    kernels::widen_to_f32(inputs[static_cast<std::size_t>(owner)].data() + begin * elem, options.dtype, len, acc.data());
    for (int p = 0; p < ranks; ++p) {
      if (p == owner) continue;
      const void* x = inputs[static_cast<std::size_t>(p)].data() + begin * elem;
      const float* residual = kernels::codec_uses_error_feedback(options.scatter_codec) ? zeros.data() : nullptr;
      TERN_ASSIGN_OR_RETURN(std::size_t size, kernels::encoded_size(options.scatter_codec, options.block_size, len));
      std::vector<std::uint8_t> chunk(size);
      TERN_CHECK(kernels::encode(x, options.dtype, len, residual,
                                 encode_options(options.scatter_codec, Phase::kScatter, p, begin), chunk));
      TERN_CHECK(kernels::decode_accumulate(chunk, acc.data(), len));
    }
    if (options.op == ReduceOp::kMean) {
      const float inv = 1.0f / static_cast<float>(ranks);
      for (float& v : acc) v *= inv;
    }
    const float* residual = kernels::codec_uses_error_feedback(options.gather_codec) ? zeros.data() : nullptr;
    TERN_ASSIGN_OR_RETURN(std::size_t size, kernels::encoded_size(options.gather_codec, options.block_size, len));
    std::vector<std::uint8_t> chunk(size);
    TERN_CHECK(kernels::encode(acc.data(), DType::kF32, len, residual,
                               encode_options(options.gather_codec, Phase::kGather, owner, begin), chunk));
    TERN_CHECK(kernels::decode(chunk, result.data() + begin * elem, options.dtype, len));
  }
  return result;
}

}  // namespace tern::collective
