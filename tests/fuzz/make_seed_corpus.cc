// Writes one valid chunk per codec and a few sizes into a directory: the fuzzer's seed corpus.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tern/kernels/codec.h"

int main(int argc, char** argv) {
  using namespace tern::kernels;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::filesystem::create_directories(argv[1]);
  int written = 0;
  for (int c = 0; c < kCodecCount; ++c) {
    for (std::size_t n : {0u, 1u, 5u, 33u, 130u, 1000u}) {
      std::vector<float> x(n);
      for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 37) % 11) - 5.0f;
      EncodeOptions o;
      o.codec = static_cast<Codec>(c);
      o.block_size = 32;
      std::vector<std::uint8_t> chunk(*encoded_size(o.codec, o.block_size, n));
      if (!encode(x.data(), DType::kF32, n, nullptr, o, chunk).is_ok()) return 1;
      std::ofstream(std::string(argv[1]) + "/" + std::string(codec_name(o.codec)) + "-" + std::to_string(n),
                    std::ios::binary)
          .write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(chunk.size()));
      ++written;
    }
  }
  std::printf("wrote %d seed chunks to %s\n", written, argv[1]);
  return 0;
}
