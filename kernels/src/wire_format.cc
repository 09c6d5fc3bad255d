#include "tern/kernels/wire_format.h"

#include <cmath>
#include <cstring>
#include <string>

namespace tern::kernels {
namespace {

std::uint32_t load_u32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void store_u32(std::uint8_t* p, std::uint32_t v) { std::memcpy(p, &v, 4); }

bool is_power_of_two(std::uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

Result<ChunkLayout> chunk_layout(Codec codec, std::uint32_t block_size, std::size_t count) {
  if (static_cast<unsigned>(codec) >= kCodecCount)
    return invalid_argument("unknown codec " + std::to_string(static_cast<unsigned>(codec)));
  if (count > kMaxChunkElements)
    return invalid_argument("chunk of " + std::to_string(count) + " elements exceeds the limit of " +
                            std::to_string(kMaxChunkElements));
  ChunkLayout layout;
  if (codec_is_block_scaled(codec)) {
    if (!is_power_of_two(block_size) || block_size < kMinBlockSize || block_size > kMaxBlockSize)
      return invalid_argument("block size " + std::to_string(block_size) + " is not a power of two in [" +
                              std::to_string(kMinBlockSize) + ", " + std::to_string(kMaxBlockSize) + "]");
    layout.scale_count = (count + block_size - 1) / block_size;
  }
  layout.code_bytes = (count * codec_code_bits(codec) + 7) / 8;
  layout.payload_bytes = (4 * layout.scale_count + layout.code_bytes + 3) & ~std::size_t{3};
  return layout;
}

void write_chunk_header(const ChunkHeader& header, std::uint8_t* out) noexcept {
  out[0] = kChunkMagic0;
  out[1] = kChunkMagic1;
  out[2] = kWireVersion;
  out[3] = static_cast<std::uint8_t>(header.codec);
  out[4] = header.block_size ? static_cast<std::uint8_t>(std::countr_zero(header.block_size)) : 0;
  out[5] = header.clipped ? kFlagClipped : 0;
  out[6] = 0;
  out[7] = 0;
  store_u32(out + 8, header.count);
  store_u32(out + 12, header.payload_bytes);
}

Result<ChunkView> parse_chunk_header(const std::uint8_t* p, std::size_t size) {
  if (size < kChunkHeaderBytes)
    return corrupt_data("chunk of " + std::to_string(size) + " bytes is shorter than its " +
                        std::to_string(kChunkHeaderBytes) + "-byte header");
  if (p[0] != kChunkMagic0 || p[1] != kChunkMagic1) return corrupt_data("chunk does not start with the magic 'TN'");
  if (p[2] != kWireVersion)
    return corrupt_data("chunk has wire format version " + std::to_string(p[2]) + ", this build reads version " +
                        std::to_string(kWireVersion));
  if (p[3] >= kCodecCount) return corrupt_data("chunk has unknown codec " + std::to_string(p[3]));

  ChunkView view;
  view.header.codec = static_cast<Codec>(p[3]);
  const bool scaled = codec_is_block_scaled(view.header.codec);
  const unsigned block_log2 = p[4];
  if (scaled) {
    if (block_log2 < 5 || block_log2 > 12)
      return corrupt_data("chunk has block size 2^" + std::to_string(block_log2) + ", outside [2^5, 2^12]");
    view.header.block_size = 1u << block_log2;
  } else if (block_log2 != 0) {
    return corrupt_data("chunk of codec " + std::string(codec_name(view.header.codec)) + " has a block size field of " +
                        std::to_string(block_log2) + " (must be 0)");
  }
  const std::uint8_t allowed_flags = view.header.codec == Codec::kTernGrad ? kFlagClipped : 0;
  if ((p[5] & ~allowed_flags) != 0) return corrupt_data("chunk has unknown flags 0x" + std::to_string(p[5]));
  view.header.clipped = (p[5] & kFlagClipped) != 0;
  if (p[6] != 0 || p[7] != 0) return corrupt_data("chunk has non-zero reserved bytes");
  view.header.count = load_u32(p + 8);
  view.header.payload_bytes = load_u32(p + 12);

  auto layout = chunk_layout(view.header.codec, view.header.block_size, view.header.count);
  if (!layout.is_ok()) return corrupt_data(layout.status().message());
  view.layout = *layout;
  if (view.header.payload_bytes != view.layout.payload_bytes)
    return corrupt_data("chunk header says " + std::to_string(view.header.payload_bytes) + " payload bytes but " +
                        std::to_string(view.header.count) + " " + std::string(codec_name(view.header.codec)) +
                        " elements need " + std::to_string(view.layout.payload_bytes));
  if (size != kChunkHeaderBytes + view.layout.payload_bytes)
    return corrupt_data("chunk is " + std::to_string(size) + " bytes, its header describes " +
                        std::to_string(kChunkHeaderBytes + view.layout.payload_bytes) +
                        (size < kChunkHeaderBytes + view.layout.payload_bytes ? " (truncated)" : " (trailing bytes)"));

  return view;
}

Result<ChunkView> parse_chunk(std::span<const std::uint8_t> bytes) {
  const std::size_t size = bytes.size();
  const std::uint8_t* p = bytes.data();
  TERN_ASSIGN_OR_RETURN(ChunkView view, parse_chunk_header(p, size));
  view.scales = p + kChunkHeaderBytes;
  view.codes = view.scales + 4 * view.layout.scale_count;
  for (std::size_t b = 0; b < view.layout.scale_count; ++b) {
    std::uint32_t bits = load_u32(view.scales + 4 * b);
    if ((bits & 0x7F800000u) == 0x7F800000u || (bits & 0x80000000u) != 0)
      return corrupt_data("chunk scale " + std::to_string(b) + " is negative or not finite");
  }
  // Unused bits of the last code byte and the padding after it must be zero.
  const std::size_t used_bits = static_cast<std::size_t>(view.header.count) * codec_code_bits(view.header.codec);
  if (used_bits % 8 != 0) {
    const std::uint8_t last = view.codes[view.layout.code_bytes - 1];
    if ((last >> (used_bits % 8)) != 0) return corrupt_data("chunk has non-zero bits after its last code");
  }
  const std::uint8_t* end = p + size;
  for (const std::uint8_t* q = view.codes + view.layout.code_bytes; q < end; ++q)
    if (*q != 0) return corrupt_data("chunk has non-zero padding");
  return view;
}

}  // namespace tern::kernels
