// Helper process for the multi-process bootstrap tests (kill -9, SIGSTOP, a killed root).
//
//   bootstrap_test_member member ID RANK HOST HB_MS TIMEOUT_MS   joins; prints "JOINED <rank>"
//   bootstrap_test_member root NRANKS HOST HB_MS TIMEOUT_MS      starts a root on 127.0.0.1:0,
//                                                                prints "ID <id>", joins as rank 0
// Then waits until its stdin closes, leaves cleanly and exits 0. Errors: "ERROR <status>", exit 1.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "tern/transport/bootstrap.h"

using namespace tern::transport;

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  const std::string mode = argc > 1 ? argv[1] : "";
  if ((mode != "member" || argc != 7) && (mode != "root" || argc != 6)) {
    std::fprintf(stderr, "usage: %s member ID RANK HOST HB_MS TIMEOUT_MS | root NRANKS HOST HB_MS TIMEOUT_MS\n", argv[0]);
    return 2;
  }
  const int base = mode == "member" ? 4 : 3;
  BootstrapOptions options;
  options.heartbeat_interval = std::chrono::milliseconds(std::stoi(argv[base + 1]));
  options.heartbeat_timeout = std::chrono::milliseconds(std::stoi(argv[base + 2]));
  options.formation_timeout = std::chrono::seconds(30);
  options.connect_retry_interval = std::chrono::milliseconds(20);
  JoinOptions join;
  join.host_name = argv[base];
  join.payload = {1, 2, 3};
  join.on_peer_failure = [](int rank, const tern::Status& why) {
    std::printf("FAILED %d %s\n", rank, why.message().c_str());
    std::fflush(stdout);
  };

  tern::Result<std::unique_ptr<Bootstrap>> member = tern::internal_error("not joined");
  if (mode == "member") {
    auto id = UniqueId::parse(argv[2]);
    if (!id.is_ok()) {
      std::printf("ERROR %s\n", id.status().to_string().c_str());
      return 1;
    }
    join.rank = std::stoi(argv[3]);
    member = Bootstrap::join(*id, std::move(join), options);
  } else {
    auto id = UniqueId::generate("127.0.0.1", 0);
    auto server = id.is_ok() ? BootstrapServer::start(*id, std::stoi(argv[2]), options)
                             : tern::Result<std::unique_ptr<BootstrapServer>>(id.status());
    if (!server.is_ok()) {
      std::printf("ERROR %s\n", server.status().to_string().c_str());
      return 1;
    }
    std::printf("ID %s\n", (*server)->id().to_string().c_str());
    std::fflush(stdout);
    join.rank = 0;
    member = Bootstrap::join(std::move(*server), std::move(join), options);
  }
  if (!member.is_ok()) {
    std::printf("ERROR %s\n", member.status().to_string().c_str());
    return 1;
  }
  std::printf("JOINED %d\n", (*member)->rank());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  return (*member)->close().is_ok() ? 0 : 1;
}
