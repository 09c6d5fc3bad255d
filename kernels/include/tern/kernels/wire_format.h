// The byte layout of one packed chunk (docs/wire-format.md is the normative description).
//
//   offset size  field
//   0      2     magic 'T','N' (0x54 0x4E)
//   2      1     version (kWireVersion)
//   3      1     codec (tern::kernels::Codec)
//   4      1     log2(block size) for block-scaled codecs (5..12), 0 for cast codecs
//   5      1     flags: bit 0 = terngrad clipped; other bits zero
//   6      2     reserved, zero
//   8      4     element count (u32, little-endian)
//   12     4     payload bytes after the header (u32, little-endian)
//   16     4·B   block scales (f32 LE, finite, sign bit clear), B = ceil(count / block size)
//   ...          codes (2 bits/element ternary, 1 bit sign, or raw LE values for cast codecs),
//                element i in byte i·bits/8 at bit (i·bits)%8; unused bits zero
//   ...          zero padding to a multiple of 4 payload bytes
//
// Thread safety: pure functions.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

#include "tern/common/status.h"
#include "tern/kernels/codec.h"

static_assert(std::endian::native == std::endian::little, "tern's wire format assumes a little-endian host");

namespace tern::kernels {

inline constexpr std::size_t kChunkHeaderBytes = 16;
inline constexpr std::uint8_t kWireVersion = 1;
inline constexpr std::uint8_t kChunkMagic0 = 0x54;  // 'T'
inline constexpr std::uint8_t kChunkMagic1 = 0x4E;  // 'N'
inline constexpr std::uint8_t kFlagClipped = 0x01;

/// Ternary 2-bit codes: 00 = 0, 01 = +1, 11 = -1; 10 is invalid.
inline constexpr std::uint8_t kTernaryZero = 0x0, kTernaryPlus = 0x1, kTernaryMinus = 0x3, kTernaryInvalid = 0x2;

struct ChunkHeader {
  Codec codec = Codec::kFp32;
  std::uint32_t block_size = 0;  ///< 0 for cast codecs
  bool clipped = false;
  std::uint32_t count = 0;
  std::uint32_t payload_bytes = 0;
};

/// Sizes of the sections of a chunk; all derived from (codec, block size, count).
struct ChunkLayout {
  std::size_t scale_count = 0;   ///< blocks (0 for cast codecs)
  std::size_t code_bytes = 0;    ///< ceil(count · bits / 8)
  std::size_t payload_bytes = 0; ///< 4·scale_count + code_bytes, rounded up to a multiple of 4
  std::size_t total_bytes() const { return kChunkHeaderBytes + payload_bytes; }
};

/// The layout for a valid (codec, block size, count); kInvalidArgument otherwise.
Result<ChunkLayout> chunk_layout(Codec codec, std::uint32_t block_size, std::size_t count);

/// A validated chunk: pointers into the caller's bytes (any alignment).
struct ChunkView {
  ChunkHeader header;
  ChunkLayout layout;
  const std::uint8_t* scales = nullptr;  ///< layout.scale_count little-endian floats
  const std::uint8_t* codes = nullptr;   ///< layout.code_bytes bytes
};

/// Validates everything but the individual ternary codes (checked by the decoders as they go):
/// size at least a header, magic, version, known codec, block size legal for the codec (0 for cast
/// codecs), no unknown flags (clipped only for terngrad), reserved bytes zero, payload length equal
/// to the one implied by (codec, block size, count) and to bytes.size() - 16, every scale finite
/// with its sign bit clear, unused code bits and padding zero. kCorruptData names the first problem.
Result<ChunkView> parse_chunk(std::span<const std::uint8_t> bytes);

/// The header-only part of parse_chunk(): validates the 16 bytes at `header` against a chunk of
/// `chunk_size` bytes (everything up to, not including, the scale and padding checks). For callers
/// that hold only the header, e.g. a chunk in GPU memory. The returned view's scales and codes
/// pointers are null.
Result<ChunkView> parse_chunk_header(const std::uint8_t* header, std::size_t chunk_size);

/// Writes the 16 header bytes.
void write_chunk_header(const ChunkHeader& header, std::uint8_t* out) noexcept;

}  // namespace tern::kernels
