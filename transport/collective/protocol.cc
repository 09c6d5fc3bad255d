#include "protocol.h"

#include <algorithm>
#include <cstring>

#include "tern/kernels/codec.h"

namespace tern::collective {
namespace {

constexpr std::uint8_t kMagic0 = 'T', kMagic1 = 'A';
constexpr std::uint8_t kVersion = 1;

template <typename T>
void put(std::uint8_t*& p, T v) {
  std::memcpy(p, &v, sizeof v);
  p += sizeof v;
}

template <typename T>
T get(const std::uint8_t*& p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return v;
}

std::size_t round_up(std::size_t v, std::size_t multiple) { return (v + multiple - 1) / multiple * multiple; }

}  // namespace

transport::Tag make_tag(std::uint64_t op, Phase phase, std::uint32_t chunk) {
  return ((op & 0x3FFFFFFFu) << 18) | (static_cast<std::uint64_t>(phase) << 16) | (chunk & 0xFFFFu);
}

void write_descriptor(const OpDescriptor& d, std::uint8_t* out) {
  std::uint8_t* p = out;
  put<std::uint8_t>(p, kMagic0);
  put<std::uint8_t>(p, kMagic1);
  put<std::uint8_t>(p, kVersion);
  put<std::uint8_t>(p, d.dtype);
  put<std::uint8_t>(p, d.scatter_codec);
  put<std::uint8_t>(p, d.gather_codec);
  put<std::uint8_t>(p, d.reduce_op);
  put<std::uint8_t>(p, d.clip);
  put(p, d.group_id);
  put(p, d.op);
  put(p, d.count);
  put(p, d.block_size);
  put(p, d.chunk_elements);
  put(p, d.tensor_key);
}

Result<OpDescriptor> parse_descriptor(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kDescriptorBytes)
    return corrupt_data("operation descriptor of " + std::to_string(bytes.size()) + " bytes (expected " +
                        std::to_string(kDescriptorBytes) + ")");
  const std::uint8_t* p = bytes.data();
  if (get<std::uint8_t>(p) != kMagic0 || get<std::uint8_t>(p) != kMagic1)
    return corrupt_data("operation descriptor has a bad magic");
  if (const auto v = get<std::uint8_t>(p); v != kVersion)
    return corrupt_data("operation descriptor version " + std::to_string(v) + " (this build speaks " +
                        std::to_string(kVersion) + ")");
  OpDescriptor d;
  d.dtype = get<std::uint8_t>(p);
  d.scatter_codec = get<std::uint8_t>(p);
  d.gather_codec = get<std::uint8_t>(p);
  d.reduce_op = get<std::uint8_t>(p);
  d.clip = get<std::uint8_t>(p);
  d.group_id = get<std::uint64_t>(p);
  d.op = get<std::uint64_t>(p);
  d.count = get<std::uint64_t>(p);
  d.block_size = get<std::uint32_t>(p);
  d.chunk_elements = get<std::uint32_t>(p);
  d.tensor_key = get<std::uint64_t>(p);
  return d;
}

std::string describe_mismatch(const OpDescriptor& a, const OpDescriptor& b) {
  auto field = [](const char* name, auto x, auto y) -> std::string {
    return std::string(name) + ": " + std::to_string(x) + " vs " + std::to_string(y);
  };
  auto named = [](const char* name, std::string_view x, std::string_view y) -> std::string {
    return std::string(name) + ": " + std::string(x) + " vs " + std::string(y);
  };
  using kernels::Codec;
  using kernels::DType;
  if (a.group_id != b.group_id) return field("group id", a.group_id, b.group_id);
  if (a.op != b.op) return field("operation sequence number", a.op, b.op);
  if (a.count != b.count) return field("element count", a.count, b.count);
  if (a.dtype != b.dtype)
    return named("dtype", kernels::dtype_name(static_cast<DType>(a.dtype)), kernels::dtype_name(static_cast<DType>(b.dtype)));
  if (a.scatter_codec != b.scatter_codec)
    return named("reduce-scatter codec", kernels::codec_name(static_cast<Codec>(a.scatter_codec)),
                 kernels::codec_name(static_cast<Codec>(b.scatter_codec)));
  if (a.gather_codec != b.gather_codec)
    return named("allgather codec", kernels::codec_name(static_cast<Codec>(a.gather_codec)),
                 kernels::codec_name(static_cast<Codec>(b.gather_codec)));
  if (a.reduce_op != b.reduce_op)
    return named("reduction", a.reduce_op == 0 ? "sum" : "mean", b.reduce_op == 0 ? "sum" : "mean");
  if (a.clip != b.clip) return field("clipping", a.clip, b.clip);
  if (a.block_size != b.block_size) return field("block size", a.block_size, b.block_size);
  if (a.chunk_elements != b.chunk_elements) return field("pipeline chunk elements", a.chunk_elements, b.chunk_elements);
  if (a.tensor_key != b.tensor_key) return field("tensor key", a.tensor_key, b.tensor_key);
  return "";
}

Partition::Partition(std::size_t count, int ranks, std::uint32_t granule, std::uint32_t chunk_elements)
    : count_(count) {
  const auto n = static_cast<std::size_t>(ranks);
  shard_ = std::max<std::size_t>(granule, round_up((count + n - 1) / n, granule));
  chunk_ = std::min(shard_, round_up(std::max<std::size_t>(chunk_elements, 1), granule));
  // Keep the chunk index within its 16 tag bits.
  const std::size_t min_chunk = round_up((shard_ + kMaxChunksPerShard - 1) / kMaxChunksPerShard, granule);
  chunk_ = std::max(chunk_, min_chunk);
}

std::size_t Partition::shard_begin(int shard) const {
  return std::min(count_, static_cast<std::size_t>(shard) * shard_);
}

std::size_t Partition::shard_size(int shard) const {
  return std::min(count_, shard_begin(shard) + shard_) - shard_begin(shard);
}

std::uint32_t Partition::chunks(int shard) const {
  return static_cast<std::uint32_t>((shard_size(shard) + chunk_ - 1) / chunk_);
}

std::size_t Partition::chunk_begin(int shard, std::uint32_t chunk) const {
  return shard_begin(shard) + static_cast<std::size_t>(chunk) * chunk_;
}

std::size_t Partition::chunk_size(int shard, std::uint32_t chunk) const {
  const std::size_t begin = static_cast<std::size_t>(chunk) * chunk_;
  return std::min(shard_size(shard), begin + chunk_) - begin;
}

}  // namespace tern::collective
