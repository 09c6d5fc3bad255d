// Writes one valid frame of every control request and reply (and a stream of several) into a
// directory: the seed corpus of fuzz_control_frame.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tern/daemon/protocol.h"

int main(int argc, char** argv) {
  namespace protocol = tern::daemon::protocol;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::filesystem::create_directories(argv[1]);
  protocol::GroupJoin join;
  join.unique_id = "tern1:10.0.0.1:29500:" + std::string(64, 'a');
  join.rank = 1;
  join.nranks = 4;
  join.local_size = 2;
  std::vector<std::vector<std::uint8_t>> frames = {
      protocol::encode_request(protocol::Hello{0, 1024, 331840, 42}, 3),
      protocol::encode_request(protocol::Hello{0, 0, 0, 42}, 0),
      protocol::encode_request(protocol::AllocArena{1 << 20}, 1),
      protocol::encode_request(protocol::FreeArena{3}, 0),
      protocol::encode_request(protocol::GetUniqueId{}, 0),
      protocol::encode_request(join, 0),
      protocol::encode_request(protocol::GroupLeave{1}, 0),
      protocol::encode_request(protocol::RegisterCuda{std::vector<std::uint8_t>(64, 7), 4096, 0}, 0),
      protocol::encode_request(protocol::DeregisterCuda{2}, 0),
      protocol::encode_request(protocol::StatusRequest{}, 0),
  };
  protocol::Reply body;
  body.u64 = 9;
  body.u32 = 5;
  body.text = "node-a";
  for (std::uint16_t t = 1; t <= 9; ++t)
    frames.push_back(protocol::encode_reply(static_cast<protocol::MessageType>(t), tern::Status::ok(), body));
  frames.push_back(protocol::encode_reply(protocol::MessageType::kGroupJoin, tern::Status(tern::StatusCode::kTimeout, "late")));
  std::vector<std::uint8_t> stream;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    std::ofstream(std::string(argv[1]) + "/frame-" + std::to_string(i), std::ios::binary)
        .write(reinterpret_cast<const char*>(frames[i].data()), static_cast<std::streamsize>(frames[i].size()));
    stream.insert(stream.end(), frames[i].begin(), frames[i].end());
  }
  std::ofstream(std::string(argv[1]) + "/stream", std::ios::binary)
      .write(reinterpret_cast<const char*>(stream.data()), static_cast<std::streamsize>(stream.size()));
  return 0;
}
