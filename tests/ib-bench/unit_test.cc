// ib-bench pieces without hardware or network: sizes, options, statistics, perftest columns, hex,
// host lists, slow-link flags, verbs formatting helpers, UCX resource parsing, the command line.
#include <gtest/gtest.h>

#include <cerrno>
#include <sstream>

#include "allpairs/allpairs.h"
#include "cli/cli.h"
#include "common/exit_codes.h"
#include "common/hex.h"
#include "common/sizes.h"
#include "doctor/checks.h"
#include "perf/options.h"
#include "perf/stats.h"
#include "report/json_report.h"
#include "report/table.h"
#include "verbs/devices.h"
#include "verbs/verbs_raii.h"

namespace tern::ibbench {
namespace {

TEST(IbBenchSizes, ParsesSuffixesAndRejectsGarbage) {
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_EQ(*parse_size("64K"), 65536u);
  EXPECT_EQ(*parse_size("64k"), 65536u);
  EXPECT_EQ(*parse_size("1M"), 1048576u);
  EXPECT_EQ(*parse_size("1G"), std::size_t{1} << 30);
  for (const char* bad : {"", "0", "K", "12X", "-4", "2G", "1.5M", "99999999999999999999"})
    EXPECT_EQ(parse_size(bad).status().code(), StatusCode::kInvalidArgument) << bad;
}

TEST(IbBenchSizes, ListsKeepOrderAndRejectDuplicates) {
  auto l = parse_size_list("8, 4K,1M");
  ASSERT_TRUE(l.is_ok());
  EXPECT_EQ(*l, (std::vector<std::size_t>{8, 4096, 1048576}));
  EXPECT_FALSE(parse_size_list("4K,4096").is_ok());
  EXPECT_FALSE(parse_size_list(",,").is_ok());
}

TEST(IbBenchSizes, AllIsPerftestSweep) {
  const auto all = all_power_of_two_sizes();
  ASSERT_EQ(all.size(), 23u);
  EXPECT_EQ(all.front(), 2u);
  EXPECT_EQ(all.back(), 8u << 20);
  EXPECT_EQ(format_size(65536), "64K");
  EXPECT_EQ(format_size(3u << 20), "3M");
  EXPECT_EQ(format_size(1000), "1000");
}

PerfOptions bw_options() {
  PerfOptions o;
  o.sizes = {4096, 65536};
  o.iterations = 100;
  o.warmup = 10;
  o.window = 16;
  return o;
}

TEST(IbBenchOptions, JsonRoundTripIsIdentical) {
  PerfOptions o = bw_options();
  o.bidirectional = true;
  o.transport = TransportKind::kVerbs;
  o.verb = VerbsOp::kSend;
  auto back = perf_options_from_json(to_json(o));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_TRUE(differences(o, *back).empty());
  EXPECT_EQ(to_json(*back), to_json(o));
}

TEST(IbBenchOptions, DifferencesNameEveryField) {
  PerfOptions a = bw_options();
  PerfOptions b = a;
  b.sizes = {4096};
  b.window = 64;
  const auto diff = differences(a, b);
  ASSERT_EQ(diff.size(), 2u);
  EXPECT_NE(diff[0].find("sizes: [4096,65536] here, [4096] on the peer"), std::string::npos) << diff[0];
  EXPECT_NE(diff[1].find("window: 16 here, 64 on the peer"), std::string::npos) << diff[1];
}

TEST(IbBenchOptions, ValidateRejectsInconsistentSets) {
  PerfOptions o = bw_options();
  EXPECT_TRUE(validate(o).is_ok());
  o.duration_s = 1;  // both iterations and duration
  EXPECT_FALSE(validate(o).is_ok());
  o = bw_options();
  o.window = 0;
  EXPECT_FALSE(validate(o).is_ok());
  o = bw_options();
  o.test = TestKind::kLat;
  o.bidirectional = true;
  EXPECT_FALSE(validate(o).is_ok());
  o = bw_options();
  o.sizes.clear();
  EXPECT_FALSE(validate(o).is_ok());
}

TEST(IbBenchOptions, PeerJsonIsCheckedField_by_field) {
  nlohmann::json j = to_json(bw_options());
  j["window"] = "lots";
  EXPECT_EQ(perf_options_from_json(j).status().code(), StatusCode::kCorruptData);
  j = to_json(bw_options());
  j.erase("sizes");
  EXPECT_EQ(perf_options_from_json(j).status().code(), StatusCode::kCorruptData);
  j = to_json(bw_options());
  j["memory"] = "flash";
  EXPECT_EQ(perf_options_from_json(j).status().code(), StatusCode::kCorruptData);
  EXPECT_FALSE(perf_options_from_json(nlohmann::json::array()).is_ok());
}

TEST(IbBenchStats, BandwidthUsesMebibytesAndBestInterval) {
  // 1000 messages of 1 MiB in 2 s: 500 MB/s average; one interval ran at 800 MB/s.
  const std::vector<Checkpoint> cps{{0, 0.0}, {400, 0.5}, {1000, 2.0}};
  const BwRow r = bw_row(1 << 20, 1000, 2.0, cps);
  EXPECT_DOUBLE_EQ(r.bw_avg_mbs, 500.0);
  EXPECT_DOUBLE_EQ(r.bw_peak_mbs, 800.0);
  EXPECT_DOUBLE_EQ(r.msg_rate_mpps, 1000 / 2.0 / 1e6);
  // A burst (many completions in one progress call) is not a rate: stretches under 1/8 of the
  // run are skipped; from 0 the shortest qualifying stretch ends at the burst (500 in 0.5001 s).
  const BwRow burst = bw_row(1 << 20, 1000, 2.0, {{0, 0.0}, {400, 0.5}, {500, 0.5001}, {1000, 2.0}});
  EXPECT_NEAR(burst.bw_peak_mbs, 800.0, 1e-9);
  // No checkpoints: the peak is the average, never below it.
  EXPECT_DOUBLE_EQ(bw_row(1 << 20, 1000, 2.0, {}).bw_peak_mbs, 500.0);
  const BwRow both = add_directions(r, r);
  EXPECT_DOUBLE_EQ(both.bw_avg_mbs, 1000.0);
  EXPECT_EQ(both.iterations, 2000u);
}

TEST(IbBenchStats, LatencyPercentilesAreNearestRank) {
  std::vector<double> s;
  for (int i = 1000; i >= 1; --i) s.push_back(i);  // 1..1000 µs, unsorted
  const LatRow r = lat_row(8, s);
  EXPECT_EQ(r.iterations, 1000u);
  EXPECT_DOUBLE_EQ(r.t_min, 1);
  EXPECT_DOUBLE_EQ(r.t_max, 1000);
  EXPECT_DOUBLE_EQ(r.t_typical, 500);
  EXPECT_DOUBLE_EQ(r.t_avg, 500.5);
  EXPECT_DOUBLE_EQ(r.p99, 990);
  EXPECT_DOUBLE_EQ(r.p999, 999);
  EXPECT_NEAR(r.t_stdev, 288.675, 1e-3);
  std::vector<double> none;
  EXPECT_EQ(lat_row(8, none).iterations, 0u);
}

TEST(IbBenchTable, PerftestColumns) {
  EXPECT_EQ(bw_header(), " #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]");
  const std::string line = bw_line({65536, 5000, 11024.334, 11019.2, 0.176307});
  EXPECT_EQ(line, " 65536      5000           11024.33           11019.20             0.176307");
  const std::string lh = lat_header();
  for (const char* col : {"#bytes", "#iterations", "t_min[usec]", "t_max[usec]", "t_typical[usec]", "t_avg[usec]",
                          "t_stdev[usec]", "99% percentile[usec]", "99.9% percentile[usec]"})
    EXPECT_NE(lh.find(col), std::string::npos) << col;
  EXPECT_EQ(lat_line({2, 1000, 1.01, 3.44, 1.03, 1.05, 0.07, 1.14, 3.44}),
            " 2       1000         1.01           3.44           1.03             1.05           0.07             1.14 "
            "                  3.44");
  EXPECT_EQ(text_table({{"a", "bb"}, {"ccc", "d"}}), "a    bb\nccc  d\n");
}

TEST(IbBenchHex, RoundTripAndBadInput) {
  const std::vector<std::byte> v{std::byte{0}, std::byte{0xab}, std::byte{0xff}};
  EXPECT_EQ(to_hex(v), "00abff");
  EXPECT_EQ(*from_hex("00ABff"), v);
  EXPECT_EQ(from_hex("abc").status().code(), StatusCode::kCorruptData);
  EXPECT_EQ(from_hex("zz").status().code(), StatusCode::kCorruptData);
}

TEST(IbBenchAllPairs, HostListsAndFiles) {
  auto h = parse_hosts("10.77.0.1, 10.77.0.2:19000,[fe80::1]:99", 18515);
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].port, 18515);
  EXPECT_EQ((*h)[1].host, "10.77.0.2");
  EXPECT_EQ((*h)[1].port, 19000);
  EXPECT_EQ((*h)[2].host, "fe80::1");
  EXPECT_EQ((*h)[2].label(), "[fe80::1]:99");
  auto f = parse_hosts("# rack 1\nnode-a\n\nnode-b  # spare\n", 7000);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ((*f)[1].host, "node-b");
  EXPECT_FALSE(parse_hosts("a", 1).is_ok());          // one host
  EXPECT_FALSE(parse_hosts("a,a", 1).is_ok());        // duplicate
  EXPECT_FALSE(parse_hosts("a:0,b", 1).is_ok());      // bad port
  EXPECT_FALSE(parse_hosts("a:70000,b", 1).is_ok());  // bad port
}

TEST(IbBenchAllPairs, FlagsLinksBelowThresholdAndFailures) {
  AllPairsReport r;
  r.threshold_pct = 80;
  r.hosts = {{"a", 1}, {"b", 1}, {"c", 1}};
  r.pairs = {{0, 1, 1000, 0, {}, false}, {1, 0, 990, 0, {}, false},  {0, 2, 1010, 0, {}, false},
             {2, 0, 700, 0, {}, false},  {1, 2, 1000, 0, {}, false}, {2, 1, 0, 0, "refused", false}};
  flag_slow_links(r);
  EXPECT_DOUBLE_EQ(r.median_mbs, 1000);  // of 700, 990, 1000, 1000, 1010
  EXPECT_EQ(r.slow_links, 2u);
  EXPECT_TRUE(r.pairs[3].slow);  // 700 < 0.8 * 1000
  EXPECT_TRUE(r.pairs[5].slow);  // failed
  EXPECT_FALSE(r.pairs[0].slow);
  EXPECT_DOUBLE_EQ(median({3, 1, 2, 4}), 2.5);
  const std::string text = format_all_pairs(r);
  EXPECT_NE(text.find("700.0*"), std::string::npos) << text;
  EXPECT_NE(text.find("FAILED c:1 -> b:1: refused"), std::string::npos) << text;
}

TEST(IbBenchVerbs, FormattingHelpers) {
  EXPECT_EQ(port_state_name(4), "ACTIVE");
  EXPECT_EQ(port_state_name(2), "INIT");
  EXPECT_EQ(phys_state_name(5), "LinkUp");
  EXPECT_EQ(speed_name(32).first, "25.78125 Gb/s (EDR)");
  EXPECT_EQ(width_name(2), (std::pair<std::string, int>{"4X", 4}));
  EXPECT_EQ(speed_name(3).second, 0);
  EXPECT_EQ(mtu_bytes(5), 4096);
  EXPECT_EQ(format_guid(htobe64(0x0c42a10300102b3cULL)), "0c42:a103:0010:2b3c");
  const std::uint8_t gid[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x02, 0xc9, 0xff, 0xfe, 0, 0, 0x01};
  EXPECT_EQ(format_gid(gid), "fe80:0000:0000:0000:0202:c9ff:fe00:0001");
}

TEST(IbBenchVerbs, BothNoDeviceOutcomes) {
  const Status enosys = device_list_outcome(true, ENOSYS, 0);  // kernel without RDMA
  EXPECT_TRUE(is_no_rdma(enosys));
  EXPECT_NE(enosys.message().find("this kernel has no RDMA support"), std::string::npos) << enosys.message();
  const Status empty = device_list_outcome(false, 0, 0);  // RDMA kernel, no adapter
  EXPECT_TRUE(is_no_rdma(empty));
  EXPECT_NE(empty.message().find("no adapter found"), std::string::npos) << empty.message();
  EXPECT_TRUE(is_no_rdma(device_list_outcome(true, EACCES, 0)));
  EXPECT_TRUE(device_list_outcome(false, 0, 2).is_ok());
}

TEST(IbBenchVerbs, NoDeviceIsAClearErrorNotACrash) {
  // This machine's kernel has no RDMA; on one with devices the list is simply not empty.
  auto devices = list_devices();
  if (devices.is_ok()) {
    EXPECT_FALSE(devices->empty());
    return;
  }
  EXPECT_TRUE(is_no_rdma(devices.status())) << devices.status().to_string();
  EXPECT_EQ(devices.status().message().rfind("no RDMA devices: ", 0), 0u);
  EXPECT_FALSE(is_no_rdma(unavailable("no GPU")));
}

TEST(IbBenchDoctor, ParsesUcxResourceLines) {
  const char* info =
      "#      resource 0  :  md 0  dev 0  flags -- self/memory0\n"
      "#      resource 1  :  md 1  dev 1  flags -- tcp/lo\n"
      "#            md 1  :  component 1  tcp \n"
      "#      resource 7  :  md 5  dev 6  flags -- rc_mlx5/mlx5_0:1\n";
  EXPECT_EQ(parse_ucx_resources(info), (std::vector<std::string>{"self/memory0", "tcp/lo", "rc_mlx5/mlx5_0:1"}));
}

TEST(IbBenchJson, ErrorDocument) {
  const nlohmann::json j = error_json("bw", Status(StatusCode::kTimeout, "peer gone"), 1);
  EXPECT_EQ(j["tool"], "ib-bench");
  EXPECT_EQ(j["command"], "bw");
  EXPECT_EQ(j["error"]["code"], "timeout");
  EXPECT_EQ(j["error"]["exit_code"], 1);
}

// run_cli with its own argv; returns {exit code, stdout, stderr}.
struct CliRun {
  int code;
  std::string out, err;
};
CliRun cli(const std::vector<const char*>& args) {
  const char* argv[32] = {"ib-bench"};
  int argc = 1;
  for (const char* a : args)
    if (argc < 31) argv[argc++] = a;
  std::ostringstream out, err;
  const int code = run_cli(argc, argv, out, err);
  return {code, out.str(), err.str()};
}

TEST(IbBenchCli, BadOptionsAreUsageErrors) {
  for (const auto& args : std::vector<std::vector<const char*>>{
           {},                                            // no subcommand
           {"frobnicate"},                                // unknown subcommand
           {"bw", "--bogus"},                             // unknown option
           {"bw"},                                        // neither --server nor a host
           {"bw", "--server", "host"},                    // both
           {"bw", "h", "-s", "12X"},                      // bad size
           {"bw", "h", "-s", "4K", "--sizes", "8,16"},    // exclusive
           {"bw", "h", "-n", "10", "-D", "1"},            // exclusive
           {"bw", "h", "--mem", "flash"},                 // not a choice
           {"bw", "h", "--transport", "carrier-pigeon"},  // not a choice
           {"bw", "h", "-t", "0"},                        // window out of range
           {"lat", "h", "-b"},                            // bw only
           {"lat", "h", "-p", "70000"},                   // port out of range
           {"topo", "--xml", "/nonexistent.xml"},
           {"all-pairs"},                               // neither --serve nor hosts
           {"all-pairs", "--hosts", "a"},               // one host
           {"all-pairs", "--serve", "--hosts", "a,b"},  // exclusive
       }) {
    const CliRun r = cli(args);
    std::string shown;
    for (const char* a : args) shown += std::string(a) + " ";
    EXPECT_EQ(r.code, kExitUsage) << shown << "\n" << r.err;
    EXPECT_NE(r.err.find("ib-bench"), std::string::npos) << shown;
    EXPECT_TRUE(r.out.empty()) << shown;
  }
}

TEST(IbBenchCli, HelpAndVersionSucceed) {
  const CliRun help = cli({"--help"});
  EXPECT_EQ(help.code, 0);
  for (const char* cmd : {"devices", "topo", "check", "bw", "lat", "all-pairs", "Exit codes"})
    EXPECT_NE(help.out.find(cmd), std::string::npos) << cmd;
  EXPECT_EQ(cli({"bw", "--help"}).code, 0);
  const CliRun version = cli({"--version"});
  EXPECT_EQ(version.code, 0);
  EXPECT_NE(version.out.find(std::string(ib_bench_version())), std::string::npos);
}

TEST(IbBenchCli, NoDevicesExitCode) {
  const CliRun r = cli({"devices"});
  if (r.code == kExitOk) GTEST_SKIP() << "this machine has RDMA devices";
  EXPECT_EQ(r.code, kExitNoRdma) << r.err;
  EXPECT_NE(r.err.find("no RDMA devices"), std::string::npos);
  // verbs bw/lat fail the same way, before any network wait.
  for (const char* cmd : {"bw", "lat"}) {
    const CliRun v = cli({cmd, "--server", "--transport", "verbs", "--timeout", "1"});
    EXPECT_EQ(v.code, kExitNoRdma) << v.err;
    EXPECT_NE(v.err.find("no RDMA devices"), std::string::npos);
  }
  const CliRun j = cli({"devices", "--json"});
  const nlohmann::json doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["error"]["exit_code"], kExitNoRdma);
  EXPECT_TRUE(doc["devices"].empty());
}

TEST(IbBenchCli, CudaMemoryWithoutGpuIsUnavailable) {
  const CliRun r = cli({"bw", "--server", "--mem", "cuda", "--timeout", "1"});
  if (r.code == kExitError && r.err.find("timed out") != std::string::npos) GTEST_SKIP() << "a GPU is present";
  EXPECT_EQ(r.code, kExitUnavailable) << r.err;
  EXPECT_NE(r.err.find("--mem cuda"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tern::ibbench
