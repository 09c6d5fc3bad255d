// Writes one valid frame of every bootstrap message type (and a stream of several) into a
// directory: the seed corpus of fuzz_bootstrap_frame.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "wire.h"

int main(int argc, char** argv) {
  namespace wire = tern::transport::bootstrap_wire;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::filesystem::create_directories(argv[1]);
  wire::Nonce nonce{};
  wire::Mac mac{};
  for (std::size_t i = 0; i < nonce.size(); ++i) {
    nonce[i] = static_cast<std::uint8_t>(i * 7);
    mac[i] = static_cast<std::uint8_t>(255 - i);
  }
  const std::vector<wire::Message> messages = {
      wire::Hello{wire::kProtocolVersion, nonce},
      wire::Challenge{wire::kProtocolVersion, nonce, mac, 1000, 5000},
      wire::Join{3, true, "node-3", {9, 8, 7, 6}, mac},
      wire::Join{-1, false, "n", {}, mac},
      wire::Progress{8, 5, 3, {1, 4, 7}},
      wire::Welcome{2, 4, 0},
      wire::Table{{{"a", {1}}, {"bb", {}}, {"c.example", {1, 2, 3}}}},
      wire::Heartbeat{},
      wire::Contribute{7, wire::CollectiveKind::kAllgather, {1, 2, 3, 4}},
      wire::Gathered{7, wire::CollectiveKind::kBarrier, {{}, {}}},
      wire::Gathered{8, wire::CollectiveKind::kAllgather, {{1}, {}, {2, 3}}},
      wire::CollectiveFailed{9, tern::StatusCode::kInvalidArgument, "collective #9 mismatch"},
      wire::PeerFailed{2, wire::FailureKind::kSilent, 5100, "rank 2 (host n2) is silent for 5.1 s"},
      wire::Leave{},
      wire::Goodbye{},
      wire::Error{tern::StatusCode::kTimeout, "group formation timed out after 30 s"},
  };
  std::vector<std::uint8_t> stream;
  int written = 0;
  for (const auto& m : messages) {
    const wire::Bytes frame = wire::encode(m);
    stream.insert(stream.end(), frame.begin(), frame.end());
    const std::string name = std::string(argv[1]) + "/" + std::string(wire::type_name(wire::type_of(m))) + "-" +
                             std::to_string(written);
    std::ofstream(name, std::ios::binary)
        .write(reinterpret_cast<const char*>(frame.data()), static_cast<std::streamsize>(frame.size()));
    ++written;
  }
  std::ofstream(std::string(argv[1]) + "/stream", std::ios::binary)
      .write(reinterpret_cast<const char*>(stream.data()), static_cast<std::streamsize>(stream.size()));
  std::printf("wrote %d seed frames and a stream to %s\n", written + 1, argv[1]);
  return 0;
}
