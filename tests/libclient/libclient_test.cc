// libtern: its exported ABI, its errors, and the C++ wrapper against an in-process ternd.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <thread>

#include "../daemon/daemon_test_util.h"
#include "tern/tern.hpp"

namespace {

using tern::daemon::test::TempDir;
using tern::daemon::test::TestDaemon;

TEST(LibternAbi, ExportsOnlyTernSymbols) {
  const std::string cmd = std::string("nm -D --defined-only ") + TERN_LIBRARY_PATH;
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char line[512];
  std::set<std::string> exported;
  while (std::fgets(line, sizeof line, p)) {
    char type = 0;
    char name[400] = {};
    if (std::sscanf(line, "%*s %c %399s", &type, name) != 2) continue;
    std::string symbol = name;
    symbol = symbol.substr(0, symbol.find('@'));  // tern_connect@@TERN_0: versioned by libtern.map
    if (type == 'T' || type == 'D' || type == 'B' || type == 'W' || type == 'V' || type == 'u') exported.insert(symbol);
  }
  ASSERT_EQ(::pclose(p), 0);
  for (const std::string& s : exported) EXPECT_EQ(s.rfind("tern_", 0), 0u) << "libtern exports " << s;
  for (const char* want : {"tern_connect", "tern_disconnect", "tern_allreduce", "tern_wait", "tern_group_join",
                           "tern_alloc", "tern_register", "tern_daemon_status", "tern_last_error"})
    EXPECT_EQ(exported.count(want), 1u) << want << " is not exported";
}

TEST(LibternErrors, MissingDaemonIsUnavailableNamingThePath) {
  tern_client_t* c = nullptr;
  EXPECT_EQ(tern_connect("/nonexistent/tern.sock", &c), TERN_UNAVAILABLE);
  EXPECT_EQ(c, nullptr);
  EXPECT_NE(std::string(tern_last_error()).find("/nonexistent/tern.sock"), std::string::npos) << tern_last_error();
  EXPECT_STREQ(tern_status_name(TERN_PEER_FAILURE), "peer failure");
}

TEST(LibternCpp, SingleTrainerAllreduceAndErrors) {
  TempDir dir;
  const std::string sock = dir.path() + "/t.sock";
  TestDaemon daemon(tern::daemon::test::test_config(sock));
  tern::Client client(sock.c_str());
  const tern::UniqueId id = client.unique_id();
  EXPECT_EQ(id.text().rfind("tern1:127.0.0.1:", 0), 0u);
  tern::Group group(client, id, {0, 1, 1, 5000, 7});
  EXPECT_EQ(group.rank(), 0);
  EXPECT_EQ(group.size(), 1);
  tern::Buffer buf(client, 256 * sizeof(float));
  auto* f = static_cast<float*>(buf.data());
  for (int i = 0; i < 256; ++i) f[i] = static_cast<float>(i) * 0.25f;
  tern::AllreduceArgs args(buf.data(), 256);
  args.scatter_codec = TERN_CODEC_FP32;
  args.gather_codec = TERN_CODEC_FP32;
  args.op = TERN_SUM;
  tern::Request r = group.allreduce(args);
  EXPECT_TRUE(r.wait(10000));
  for (int i = 0; i < 256; ++i) ASSERT_EQ(f[i], static_cast<float>(i) * 0.25f) << i;  // fp32 codecs: exact

  // A buffer ternd cannot reach is refused before anything is sent.
  std::vector<float> plain(16);
  tern::AllreduceArgs bad(plain.data(), plain.size());
  try {
    group.allreduce(bad);
    FAIL() << "allreduce on unregistered memory succeeded";
  } catch (const tern::Error& e) {
    EXPECT_EQ(e.status(), TERN_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("not inside memory from tern_alloc or tern_register"), std::string::npos)
        << e.what();
  }
  // Non-finite input fails the request with a message.
  f[3] = std::numeric_limits<float>::infinity();
  tern::AllreduceArgs tg(buf.data(), 256);
  tern::Request r2 = group.allreduce(tg);
  try {
    r2.wait(10000);
    FAIL() << "non-finite input was accepted";
  } catch (const tern::Error& e) {
    EXPECT_EQ(e.status(), TERN_NON_FINITE) << e.what();
  }
  const std::string status = client.daemon_status();
  EXPECT_NE(status.find("\"groups\""), std::string::npos) << status;
  EXPECT_EQ(status.find(id.text().substr(id.text().size() - 64)), std::string::npos) << "status leaks the secret";
}

}  // namespace
