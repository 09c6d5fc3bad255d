#include "allpairs/allpairs.h"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>

#include "common/sizes.h"
#include "perf/control.h"
#include "perf/session.h"
#include "report/json_report.h"
#include "report/table.h"

namespace tern::ibbench {

std::string HostPort::label() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port == kDefaultControlPort ? h : fmt::format("{}:{}", h, port);
}

Result<std::vector<HostPort>> parse_hosts(std::string_view text, std::uint16_t default_port) {
  std::string normalized;
  for (std::string_view rest = text; !rest.empty();) {
    std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    normalized += std::string(line) + ",";
  }
  std::vector<HostPort> hosts;
  std::set<std::string> seen;
  for (const std::string& item : split_list(normalized)) {
    HostPort hp;
    hp.port = default_port;
    std::string port_text;
    if (item.front() == '[') {
      const std::size_t close = item.find(']');
      if (close == std::string::npos) return invalid_argument("bad host '" + item + "' (missing ']')");
      hp.host = item.substr(1, close - 1);
      if (close + 1 < item.size()) {
        if (item[close + 1] != ':') return invalid_argument("bad host '" + item + "'");
        port_text = item.substr(close + 2);
      }
    } else if (std::count(item.begin(), item.end(), ':') == 1) {
      hp.host = item.substr(0, item.find(':'));
      port_text = item.substr(item.find(':') + 1);
    } else {
      hp.host = item;
    }
    if (!port_text.empty()) {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
      if (ec != std::errc() || p != port_text.data() + port_text.size() || v == 0 || v > 65535)
        return invalid_argument("bad port in '" + item + "'");
      hp.port = static_cast<std::uint16_t>(v);
    }
    if (hp.host.empty()) return invalid_argument("empty host name in '" + item + "'");
    if (!seen.insert(hp.label()).second) return invalid_argument("host " + hp.label() + " listed twice");
    hosts.push_back(hp);
  }
  if (hosts.size() < 2)
    return invalid_argument(fmt::format("all-pairs needs at least two hosts (got {})", hosts.size()));
  return hosts;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

void flag_slow_links(AllPairsReport& report) {
  std::vector<double> measured;
  for (const PairResult& p : report.pairs)
    if (p.error.empty()) measured.push_back(p.bw_avg_mbs);
  report.median_mbs = median(measured);
  report.slow_links = 0;
  for (PairResult& p : report.pairs) {
    p.slow = !p.error.empty() || p.bw_avg_mbs < report.threshold_pct / 100.0 * report.median_mbs;
    if (p.slow) ++report.slow_links;
  }
}

namespace {

Result<nlohmann::json> request(const HostPort& agent, const nlohmann::json& message, double timeout_s) {
  TERN_ASSIGN_OR_RETURN(ControlChannel ch,
                        ControlChannel::connect(agent.host, agent.port, deadline_in(std::min(timeout_s, 10.0))));
  TERN_CHECK(ch.send(message, deadline_in(timeout_s)));
  TERN_ASSIGN_OR_RETURN(nlohmann::json reply, ch.receive(deadline_in(timeout_s)));
  TERN_CHECK(peer_error(reply, "agent " + agent.label()));
  return reply;
}

double pair_timeout(const AllPairsConfig& c) {
  // Each size: the measurement (duration or a generous rate floor) plus connection set-up.
  double per_size = c.perf.duration_s > 0 ? c.perf.duration_s * 2 + 10 : c.timeout_s;
  return c.timeout_s + per_size * static_cast<double>(c.perf.sizes.size());
}

}  // namespace

Result<AllPairsReport> run_all_pairs(const AllPairsConfig& config,
                                     const std::function<void(const PairResult&)>& progress) {
  TERN_CHECK(validate(config.perf));
  AllPairsReport report;
  report.hosts = config.hosts;
  report.threshold_pct = config.threshold_pct;
  report.perf = config.perf;
  for (const HostPort& h : config.hosts) {
    auto pong = request(h, {{"type", "ping"}}, 10);
    if (!pong)
      return Status(pong.status().code(),
                    fmt::format("agent {} does not answer (start `ib-bench all-pairs --serve` there): {}", h.label(),
                                pong.status().message()));
  }
  const double timeout = pair_timeout(config);
  for (std::size_t i = 0; i < config.hosts.size(); ++i) {
    for (std::size_t j = 0; j < config.hosts.size(); ++j) {
      if (i == j) continue;
      PairResult pr{i, j, 0, 0, {}, false};
      auto reply = request(config.hosts[i],
                           {{"type", "measure"},
                            {"target", config.hosts[j].host},
                            {"port", config.hosts[j].port},
                            {"options", to_json(config.perf)},
                            {"timeout_s", config.timeout_s}},
                           timeout);
      if (!reply) {
        pr.error = reply.status().message();
      } else if (!reply->contains("rows") || !(*reply)["rows"].is_array() || (*reply)["rows"].empty()) {
        pr.error = "agent reply without rows";
      } else {
        // The largest size decides the link's bandwidth.
        const nlohmann::json* largest = nullptr;
        for (const nlohmann::json& row : (*reply)["rows"])
          if (largest == nullptr || row.value("bytes", std::size_t{0}) > largest->value("bytes", std::size_t{0}))
            largest = &row;
        pr.bw_avg_mbs = largest->value("bw_avg_mbs", 0.0);
        pr.bw_peak_mbs = largest->value("bw_peak_mbs", 0.0);
      }
      if (progress) progress(pr);
      report.pairs.push_back(pr);
    }
  }
  flag_slow_links(report);
  return report;
}

Status serve_agent(const std::string& bind_address, std::uint16_t port, double idle_timeout_s, double timeout_s) {
  TERN_ASSIGN_OR_RETURN(ControlListener listener, ControlListener::listen(bind_address, port));
  const double idle = idle_timeout_s > 0 ? idle_timeout_s : 3600;
  char hostname[256] = {};
  (void)gethostname(hostname, sizeof hostname - 1);
  std::fprintf(stderr, "ib-bench all-pairs agent on %s port %u (idle timeout %.0f s)\n", hostname, listener.port(),
               idle);
  for (;;) {
    auto ch = listener.accept(deadline_in(idle));
    if (!ch) {
      if (ch.status().code() == StatusCode::kTimeout) {
        std::fprintf(stderr, "ib-bench all-pairs agent: idle for %.0f s, exiting\n", idle);
        return Status::ok();
      }
      return ch.status();
    }
    auto first = ch->receive(deadline_in(10));
    if (!first) {
      std::fprintf(stderr, "ib-bench all-pairs agent: %s\n", first.status().to_string().c_str());
      continue;
    }
    const std::string type = first->value("type", "");
    if (type == "ping") {
      (void)ch->send({{"type", "pong"}, {"host", hostname}}, deadline_in(10));
    } else if (type == "hello") {
      SessionConfig config;
      config.server = true;
      config.timeout_s = timeout_s;
      auto served = serve_client(*ch, *first, nullptr, config, {});
      if (!served)
        std::fprintf(stderr, "ib-bench all-pairs agent: serving %s: %s\n", ch->peer().c_str(),
                     served.status().to_string().c_str());
    } else if (type == "measure") {
      SessionConfig config;
      auto perf = perf_options_from_json(first->value("options", nlohmann::json::object()));
      const std::string target = first->value("target", "");
      const auto target_port = first->value("port", 0);
      config.timeout_s = first->value("timeout_s", timeout_s);
      Result<SessionReport> measured = Status(StatusCode::kInvalidArgument, "bad measure request");
      if (perf && !target.empty() && target_port > 0 && target_port < 65536) {
        config.perf = *perf;
        config.host = target;
        config.port = static_cast<std::uint16_t>(target_port);
        auto peer = ControlChannel::connect(config.host, config.port, deadline_in(config.timeout_s));
        measured = peer ? run_client(*peer, config, {}) : Result<SessionReport>(peer.status());
      } else if (!perf) {
        measured = perf.status();
      }
      if (measured) {
        nlohmann::json rows = nlohmann::json::array();
        for (const BwRow& r : measured->bw) rows.push_back(bw_row_to_json(r));
        (void)ch->send({{"type", "result"}, {"rows", rows}, {"lanes", measured->lanes}}, deadline_in(10));
      } else {
        std::fprintf(stderr, "ib-bench all-pairs agent: measuring to %s: %s\n", target.c_str(),
                     measured.status().to_string().c_str());
        (void)ch->send({{"error", fmt::format("{} -> {}: {}", hostname, target, measured.status().message())}},
                       deadline_in(10));
      }
    } else {
      (void)ch->send({{"error", "unknown request '" + type + "'"}}, deadline_in(10));
    }
  }
}

nlohmann::json to_json(const AllPairsReport& r) {
  nlohmann::json j = envelope("all-pairs");
  nlohmann::json hosts = nlohmann::json::array();
  for (const HostPort& h : r.hosts) hosts.push_back(h.label());
  nlohmann::json pairs = nlohmann::json::array();
  for (const PairResult& p : r.pairs) {
    nlohmann::json e = {{"from", r.hosts[p.from].label()},
                        {"to", r.hosts[p.to].label()},
                        {"bw_avg_mbs", p.bw_avg_mbs},
                        {"bw_peak_mbs", p.bw_peak_mbs},
                        {"slow", p.slow}};
    e["error"] = p.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.error);
    pairs.push_back(e);
  }
  j["hosts"] = hosts;
  j["options"] = to_json(r.perf);
  j["pairs"] = pairs;
  j["median_mbs"] = r.median_mbs;
  j["threshold_pct"] = r.threshold_pct;
  j["slow_links"] = r.slow_links;
  return j;
}

std::string format_all_pairs(const AllPairsReport& r) {
  const std::string size =
      r.perf.sizes.empty() ? "?" : format_size(*std::max_element(r.perf.sizes.begin(), r.perf.sizes.end()));
  std::string out =
      fmt::format("BW average [MB/sec], size {} (row: sender, column: receiver; * below {:g}% of the median)\n", size,
                  r.threshold_pct);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{"from \\ to"};
  for (const HostPort& h : r.hosts) header.push_back(h.label());
  rows.push_back(header);
  for (std::size_t i = 0; i < r.hosts.size(); ++i) {
    std::vector<std::string> row{r.hosts[i].label()};
    for (std::size_t j = 0; j < r.hosts.size(); ++j) {
      if (i == j) {
        row.push_back("-");
        continue;
      }
      const auto it =
          std::find_if(r.pairs.begin(), r.pairs.end(), [&](const PairResult& p) { return p.from == i && p.to == j; });
      if (it == r.pairs.end())
        row.push_back("?");
      else if (!it->error.empty())
        row.push_back("FAILED");
      else
        row.push_back(fmt::format("{:.1f}{}", it->bw_avg_mbs, it->slow ? "*" : ""));
    }
    rows.push_back(row);
  }
  out += text_table(rows);
  out += fmt::format("\nmedian {:.1f} MB/sec; {} of {} links flagged\n", r.median_mbs, r.slow_links, r.pairs.size());
  for (const PairResult& p : r.pairs) {
    if (!p.slow) continue;
    if (!p.error.empty())
      out += fmt::format("  FAILED {} -> {}: {}\n", r.hosts[p.from].label(), r.hosts[p.to].label(), p.error);
    else
      out +=
          fmt::format("  SLOW   {} -> {}: {:.1f} MB/sec = {:.0f}% of the median\n", r.hosts[p.from].label(),
                      r.hosts[p.to].label(), p.bw_avg_mbs, r.median_mbs > 0 ? 100 * p.bw_avg_mbs / r.median_mbs : 0.0);
  }
  return out;
}

}  // namespace tern::ibbench
