// libFuzzer target for the chunk decoder: arbitrary bytes go through parse_chunk and, when
// accepted, through every decoder. Nothing may crash, read out of bounds (ASan) or hit undefined
// behaviour (UBSan); an accepted chunk must decode to finite values of the count it announced.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "tern/kernels/codec.h"
#include "tern/kernels/wire_format.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tern::kernels;
  // An exactly-sized copy, so reading one byte past the chunk is an ASan error.
  std::vector<std::uint8_t> chunk(data, data + size);
  const auto view = parse_chunk(chunk);
  if (!view.is_ok()) {
    if (view.status().code() != tern::StatusCode::kCorruptData) std::abort();
    return 0;
  }
  const std::size_t n = view->header.count;
  if (n > (1u << 22)) return 0;  // keep memory bounded; the header alone cannot make n large
  std::vector<float> out(n);
  const tern::Status s = decode(chunk, out.data(), DType::kF32, n);
  if (s.is_ok()) {
    for (float v : out)
      if (!std::isfinite(v)) std::abort();  // a validated chunk decodes to finite values
  } else if (s.code() != tern::StatusCode::kCorruptData) {
    std::abort();
  }
  std::vector<std::uint16_t> half(n);
  (void)decode(chunk, half.data(), DType::kF16, n);
  (void)decode(chunk, half.data(), DType::kBf16, n);
  std::vector<float> acc(n, 1.0f);
  (void)decode_accumulate(chunk, acc.data(), n);
  if (codec_uses_error_feedback(view->header.codec)) (void)residual_update(chunk, out.data(), DType::kF32, n, acc.data());
  return 0;
}
