// White-box tests of the pieces without UCX state: tag layout, environment defaults, lane parsing.
#include <gtest/gtest.h>

#include <map>

#include "env_defaults.h"
#include "lane_report.h"
#include "ucx_tag.h"

namespace tern::transport::ucx {
namespace {

TEST(UcxTag, SenderInTopBitsEngineTagInLowBits) {
  EXPECT_EQ(make_ucx_tag(0, 0), 0u);
  EXPECT_EQ(make_ucx_tag(1, 5), (ucp_tag_t{1} << 48) | 5);
  const ucp_tag_t t = make_ucx_tag(kUcxMaxRanks - 1, kUcxMaxTag);
  EXPECT_EQ(t, ~ucp_tag_t{0});
  EXPECT_EQ(sender_of(t), kUcxMaxRanks - 1);
  EXPECT_EQ(engine_tag_of(t), kUcxMaxTag);
  EXPECT_EQ(sender_of(make_ucx_tag(7, 123)), 7);
  EXPECT_EQ(engine_tag_of(make_ucx_tag(7, 123)), 123u);
  // Same engine tag from two senders: different UCX tags, so a full-mask receive picks one.
  EXPECT_NE(make_ucx_tag(1, 42), make_ucx_tag(2, 42));
}

TEST(UcxTag, EngineTagsMustFitIn48Bits) {
  EXPECT_TRUE(engine_tag_fits(0));
  EXPECT_TRUE(engine_tag_fits(kUcxMaxTag));
  EXPECT_FALSE(engine_tag_fits(kUcxMaxTag + 1));
  EXPECT_FALSE(engine_tag_fits(~Tag{0}));
}

TEST(UcxEnvDefaults, TableDocumentsEachDefault) {
  ASSERT_FALSE(ucx_env_defaults().empty());
  for (const UcxEnvDefault& d : ucx_env_defaults()) {
    EXPECT_FALSE(d.name.starts_with("UCX_")) << d.name;
    EXPECT_FALSE(d.value.empty()) << d.name;
    EXPECT_GT(d.why.size(), 20u) << d.name;
  }
}

TEST(UcxEnvDefaults, TlsMayUseSharedMemory) {
  EXPECT_TRUE(tls_may_use_shared_memory(""));
  EXPECT_TRUE(tls_may_use_shared_memory("all"));
  EXPECT_TRUE(tls_may_use_shared_memory("sm,tcp"));
  EXPECT_TRUE(tls_may_use_shared_memory("rc,SHM"));
  EXPECT_TRUE(tls_may_use_shared_memory("posix"));
  EXPECT_TRUE(tls_may_use_shared_memory("^tcp"));
  EXPECT_TRUE(tls_may_use_shared_memory("^posix"));  // sysv remains
  EXPECT_FALSE(tls_may_use_shared_memory("tcp"));
  EXPECT_FALSE(tls_may_use_shared_memory("tcp,self"));
  EXPECT_FALSE(tls_may_use_shared_memory("rc,ud,self"));
  EXPECT_FALSE(tls_may_use_shared_memory("^sm"));
  EXPECT_FALSE(tls_may_use_shared_memory("^posix,sysv"));
}

std::map<std::string, std::string> as_map(const std::vector<UcxSetting>& settings) {
  std::map<std::string, std::string> out;
  for (const auto& s : settings) out[s.name] = s.value;
  return out;
}

TEST(UcxEnvDefaults, AppliedOnlyWhereNothingElseDecides) {
  std::map<std::string, std::string> env;
  const EnvLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  UcxOptions options;
  auto applied = as_map(defaults_to_apply(options, lookup));
  EXPECT_EQ(applied["MM_ERROR_HANDLING"], "y");
  EXPECT_EQ(applied["KEEPALIVE_INTERVAL"], "1s");

  env["UCX_KEEPALIVE_INTERVAL"] = "5s";  // the user's environment wins
  applied = as_map(defaults_to_apply(options, lookup));
  EXPECT_EQ(applied.count("KEEPALIVE_INTERVAL"), 0u);

  options.config.push_back({"mm_error_handling", "n"});  // so does the options' config, any case
  applied = as_map(defaults_to_apply(options, lookup));
  EXPECT_EQ(applied.count("MM_ERROR_HANDLING"), 0u);

  UcxOptions tcp;
  tcp.config.push_back({"TLS", "tcp,self"});  // no shared memory: the setting would only warn
  EXPECT_EQ(as_map(defaults_to_apply(tcp, lookup)).count("MM_ERROR_HANDLING"), 0u);
  env.erase("UCX_KEEPALIVE_INTERVAL");
  env["UCX_TLS"] = "tcp";
  EXPECT_EQ(as_map(defaults_to_apply(UcxOptions{}, lookup)).count("MM_ERROR_HANDLING"), 0u);
}

// Output of ucp_ep_print_info from UCX 1.13.1 on this machine (and a made-up IB lane).
constexpr std::string_view kPrintInfo = R"(#
# UCP endpoint 
#
#               peer: <no debug data>
#                 lane[0]:  3:sysv/memory.0 md[2]           -> md[2]/sysv/sysdev[255] am am_bw#0 keepalive
#                 lane[1]:  1:tcp/lo.0 md[1]                -> md[1]/tcp/sysdev[255] wireup
#                 lane[2]:  7:rc_mlx5/mlx5_0:1.0 md[5]      -> md[5]/ib/sysdev[0] rma_bw#0
#
#                tag_send: 0..<egr/short>..93..<egr/bcopy>..8256..<rndv>..(inf)
#
#                  rma_bw: mds rndv_rkey_size 9
#
)";

TEST(UcxLaneReport, ParsesLanesAndRoles) {
  const std::vector<Lane> lanes = parse_lanes(kPrintInfo);
  ASSERT_EQ(lanes.size(), 3u);
  EXPECT_EQ(lanes[0].transport, "sysv/memory");
  EXPECT_EQ(lanes[0].roles, (std::vector<std::string>{"am", "am_bw", "keepalive"}));
  EXPECT_EQ(describe(lanes[0]), "sysv/memory (am, am_bw, keepalive)");
  EXPECT_EQ(lanes[1].transport, "tcp/lo");
  EXPECT_EQ(lanes[1].roles, (std::vector<std::string>{"wireup"}));
  EXPECT_EQ(lanes[2].transport, "rc_mlx5/mlx5_0:1");
  EXPECT_EQ(lanes[2].roles, (std::vector<std::string>{"rma_bw"}));
}

TEST(UcxLaneReport, IgnoresWhatItDoesNotKnow) {
  EXPECT_TRUE(parse_lanes("").empty());
  EXPECT_TRUE(parse_lanes("# lane[0]:\n# lane[1]: nonsense\n").empty());
}

}  // namespace
}  // namespace tern::transport::ucx
