// Internal: what the ranks of an allreduce tell each other, and how they split the work.
// Normative description: docs/collective.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "tern/common/status.h"
#include "tern/transport/collective.h"
#include "tern/transport/transport.h"

namespace tern::collective {

/// Message phases, packed into the transport tag.
enum class Phase : std::uint8_t { kDescriptor = 0, kScatter = 1, kGather = 2, kAbort = 3 };

inline constexpr std::uint32_t kMaxChunksPerShard = 1u << 16;
inline constexpr std::size_t kMaxAbortMessage = 1024;

/// tag = op (30 bits) | phase (2 bits) | chunk (16 bits): 48 bits, what transports accept.
transport::Tag make_tag(std::uint64_t op, Phase phase, std::uint32_t chunk);

/// Philox stream of the encodes of operation `op`, direction `phase`, by rank `rank`: independent
/// rounding per (operation, direction, encoding rank).
inline std::uint64_t rounding_stream(std::uint64_t op, Phase phase, int rank) {
  return (op << 21) | (static_cast<std::uint64_t>(phase) << 20) | static_cast<std::uint64_t>(rank);
}

/// Every rank sends this to every other rank first; all fields must agree.
struct OpDescriptor {
  std::uint64_t group_id = 0;
  std::uint64_t op = 0;  ///< sequence number of the operation in the group, from 1
  std::uint64_t count = 0;
  std::uint8_t dtype = 0;
  std::uint8_t scatter_codec = 0;
  std::uint8_t gather_codec = 0;
  std::uint8_t reduce_op = 0;
  std::uint8_t clip = 0;
  std::uint32_t block_size = 0;
  std::uint32_t chunk_elements = 0;
  std::uint64_t tensor_key = 0;
};
inline constexpr std::size_t kDescriptorBytes = 48;

void write_descriptor(const OpDescriptor& d, std::uint8_t* out);
Result<OpDescriptor> parse_descriptor(std::span<const std::uint8_t> bytes);
/// "" when equal, else the first differing field with both values, e.g. "count: 1000 vs 1001".
std::string describe_mismatch(const OpDescriptor& mine, const OpDescriptor& theirs);

/// Shards and pipeline chunks of one operation; identical on every rank for equal descriptors.
class Partition {
 public:
  Partition(std::size_t count, int ranks, std::uint32_t granule, std::uint32_t chunk_elements);
  std::size_t shard_begin(int shard) const;
  std::size_t shard_size(int shard) const;
  std::uint32_t chunks(int shard) const;
  std::size_t chunk_begin(int shard, std::uint32_t chunk) const;  ///< global element index
  std::size_t chunk_size(int shard, std::uint32_t chunk) const;
  std::size_t max_chunk() const { return chunk_; }

 private:
  std::size_t count_;
  std::size_t shard_;  // elements per shard (last ones shorter or empty)
  std::size_t chunk_;  // elements per pipeline chunk
};

}  // namespace tern::collective
