#include "perf/session.h"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>

#include "common/hex.h"
#include "perf/memory.h"
#include "perf/ucx_engine.h"
#include "verbs/rc_engine.h"

namespace tern::ibbench {

namespace {

nlohmann::json bw_row_json(const BwRow& r) {
  return {{"bytes", r.bytes},
          {"iterations", r.iterations},
          {"bw_peak_mbs", r.bw_peak_mbs},
          {"bw_avg_mbs", r.bw_avg_mbs},
          {"msg_rate_mpps", r.msg_rate_mpps}};
}

nlohmann::json lat_row_json(const LatRow& r) {
  return {{"bytes", r.bytes},
          {"iterations", r.iterations},
          {"t_min", r.t_min},
          {"t_max", r.t_max},
          {"t_typical", r.t_typical},
          {"t_avg", r.t_avg},
          {"t_stdev", r.t_stdev},
          {"p99", r.p99},
          {"p999", r.p999}};
}

template <typename T>
Result<T> field(const nlohmann::json& j, const char* key, const std::string& peer) {
  if (!j.contains(key)) return corrupt_data(fmt::format("{}: control message without '{}'", peer, key));
  try {
    return j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    return corrupt_data(fmt::format("{}: control message field '{}' has the wrong type", peer, key));
  }
}

Result<BwRow> bw_row_from_json(const nlohmann::json& j, const std::string& peer) {
  BwRow r;
  TERN_ASSIGN_OR_RETURN(r.bytes, field<std::size_t>(j, "bytes", peer));
  TERN_ASSIGN_OR_RETURN(r.iterations, field<std::uint64_t>(j, "iterations", peer));
  TERN_ASSIGN_OR_RETURN(r.bw_peak_mbs, field<double>(j, "bw_peak_mbs", peer));
  TERN_ASSIGN_OR_RETURN(r.bw_avg_mbs, field<double>(j, "bw_avg_mbs", peer));
  TERN_ASSIGN_OR_RETURN(r.msg_rate_mpps, field<double>(j, "msg_rate_mpps", peer));
  return r;
}

Result<LatRow> lat_row_from_json(const nlohmann::json& j, const std::string& peer) {
  LatRow r;
  TERN_ASSIGN_OR_RETURN(r.bytes, field<std::size_t>(j, "bytes", peer));
  TERN_ASSIGN_OR_RETURN(r.iterations, field<std::uint64_t>(j, "iterations", peer));
  TERN_ASSIGN_OR_RETURN(r.t_min, field<double>(j, "t_min", peer));
  TERN_ASSIGN_OR_RETURN(r.t_max, field<double>(j, "t_max", peer));
  TERN_ASSIGN_OR_RETURN(r.t_typical, field<double>(j, "t_typical", peer));
  TERN_ASSIGN_OR_RETURN(r.t_avg, field<double>(j, "t_avg", peer));
  TERN_ASSIGN_OR_RETURN(r.t_stdev, field<double>(j, "t_stdev", peer));
  TERN_ASSIGN_OR_RETURN(r.p99, field<double>(j, "p99", peer));
  TERN_ASSIGN_OR_RETURN(r.p999, field<double>(j, "p999", peer));
  return r;
}

// Receives the next message, which must be of `type` (an "error" message becomes the peer's Status).
Result<nlohmann::json> expect(ControlChannel& ch, const char* type, Deadline deadline) {
  TERN_ASSIGN_OR_RETURN(nlohmann::json m, ch.receive(deadline));
  TERN_CHECK(peer_error(m, ch.peer()));
  if (!m.contains("type") || m["type"] != type)
    return corrupt_data(
        fmt::format("{}: expected a '{}' control message, got {}", ch.peer(), type, m.dump().substr(0, 200)));
  return m;
}

double round_timeout(const SessionConfig& c) { return c.timeout_s + c.perf.duration_s * 2; }

std::size_t largest(const std::vector<std::size_t>& sizes) { return *std::max_element(sizes.begin(), sizes.end()); }

void* second_half(const Buffer& buffer, const PerfOptions& perf) {
  return static_cast<char*>(buffer.data()) + largest(perf.sizes);
}

nlohmann::json checkpoints_json(const std::vector<Checkpoint>& v) {
  nlohmann::json cps = nlohmann::json::array();
  for (const Checkpoint& c : v) cps.push_back({c.messages, c.seconds});
  return cps;
}

nlohmann::json side_json(const BwSideResult& s) {
  return {{"type", "side"},
          {"messages", s.messages},
          {"seconds", s.seconds},
          {"checkpoints", checkpoints_json(s.checkpoints)},
          {"recv_checkpoints", checkpoints_json(s.recv_checkpoints)}};
}

Result<BwSideResult> side_from_json(const nlohmann::json& j, const std::string& peer) {
  BwSideResult s;
  TERN_ASSIGN_OR_RETURN(s.messages, field<std::uint64_t>(j, "messages", peer));
  TERN_ASSIGN_OR_RETURN(s.seconds, field<double>(j, "seconds", peer));
  using CheckpointPairs = std::vector<std::pair<std::uint64_t, double>>;
  TERN_ASSIGN_OR_RETURN(CheckpointPairs cps, field<CheckpointPairs>(j, "checkpoints", peer));
  for (const auto& [m, t] : cps) s.checkpoints.push_back({m, t});
  TERN_ASSIGN_OR_RETURN(CheckpointPairs rcps, field<CheckpointPairs>(j, "recv_checkpoints", peer));
  for (const auto& [m, t] : rcps) s.recv_checkpoints.push_back({m, t});
  return s;
}

// One size with UCX: warm-up round, then the measured one. Returns the client's row (the server
// returns an empty row; it gets the row from the client).
struct UcxSizeRunner {
  UcxEngine& engine;
  const PerfOptions& perf;
  bool client;
  void* send_buffer;
  void* recv_buffer;
  double timeout_s;

  Result<BwSideResult> bw(std::size_t bytes) {
    BwRound round;
    round.bytes = bytes;
    round.window = perf.window;
    round.send = client || perf.bidirectional;
    round.receive = !client || perf.bidirectional;
    if (perf.warmup > 0) {
      round.iterations = perf.warmup;
      TERN_CHECK(engine.bw(round, send_buffer, recv_buffer, deadline_in(timeout_s)));
    }
    round.iterations = perf.iterations;
    round.duration_s = perf.duration_s;
    return engine.bw(round, send_buffer, recv_buffer, deadline_in(timeout_s));
  }

  Result<std::vector<double>> lat(std::size_t bytes) {
    if (client) {
      if (perf.warmup > 0)
        TERN_CHECK(engine.lat_initiator(bytes, perf.warmup, 0, send_buffer, recv_buffer, deadline_in(timeout_s)));
      return engine.lat_initiator(bytes, perf.iterations, perf.duration_s, send_buffer, recv_buffer,
                                  deadline_in(timeout_s));
    }
    if (perf.warmup > 0) TERN_CHECK(engine.lat_responder(bytes, send_buffer, recv_buffer, deadline_in(timeout_s)));
    TERN_CHECK(engine.lat_responder(bytes, send_buffer, recv_buffer, deadline_in(timeout_s)));
    return std::vector<double>{};
  }
};

Result<SessionReport> ucx_client(ControlChannel& ch, const SessionConfig& config, const RowSink& sink) {
  const PerfOptions& perf = config.perf;
  // Two halves: sends read the first, receives write the second.
  TERN_ASSIGN_OR_RETURN(Buffer buffer, Buffer::allocate(perf.memory, 2 * largest(perf.sizes)));
  TERN_ASSIGN_OR_RETURN(std::unique_ptr<UcxEngine> engine, UcxEngine::create(perf.memory));
  char host[256] = {};
  (void)gethostname(host, sizeof host - 1);
  TERN_CHECK(ch.send({{"type", "hello"},
                      {"proto", kControlProtocol},
                      {"options", to_json(perf)},
                      {"ucx_address", to_hex(engine->address())},
                      {"host", host}},
                     deadline_in(config.timeout_s)));
  TERN_ASSIGN_OR_RETURN(nlohmann::json welcome, expect(ch, "welcome", deadline_in(config.timeout_s)));
  TERN_ASSIGN_OR_RETURN(std::string address_hex, field<std::string>(welcome, "ucx_address", ch.peer()));
  TERN_ASSIGN_OR_RETURN(std::vector<std::byte> address, from_hex(address_hex));
  TERN_CHECK(engine->connect(address));

  SessionReport report{"client", ch.peer(), "ucx", UcxEngine::ucx_version(), {}, perf, {}, {}};
  UcxSizeRunner runner{*engine, perf, true, buffer.data(), second_half(buffer, perf), round_timeout(config)};
  bool announced = false;
  for (std::size_t bytes : perf.sizes) {
    TERN_CHECK(ch.send({{"type", "size"}, {"bytes", bytes}}, deadline_in(config.timeout_s)));
    TERN_CHECK(expect(ch, "ready", deadline_in(config.timeout_s)));
    nlohmann::json row_msg;
    if (perf.test == TestKind::kBw) {
      TERN_ASSIGN_OR_RETURN(BwSideResult mine, runner.bw(bytes));
      TERN_ASSIGN_OR_RETURN(nlohmann::json side_msg, expect(ch, "side", deadline_in(config.timeout_s)));
      TERN_ASSIGN_OR_RETURN(BwSideResult theirs, side_from_json(side_msg, ch.peer()));
      // Each direction's peak comes from its receiver's checkpoints.
      BwRow row = bw_row(bytes, mine.messages, mine.seconds, theirs.recv_checkpoints);
      if (perf.bidirectional)
        row = add_directions(row, bw_row(bytes, theirs.messages, theirs.seconds, mine.recv_checkpoints));
      report.bw.push_back(row);
      row_msg = {{"type", "row"}, {"row", bw_row_json(row)}};
    } else {
      TERN_ASSIGN_OR_RETURN(std::vector<double> samples, runner.lat(bytes));
      TERN_CHECK(expect(ch, "side", deadline_in(config.timeout_s)));
      report.lat.push_back(lat_row(bytes, samples));
      row_msg = {{"type", "row"}, {"row", lat_row_json(report.lat.back())}};
    }
    if (!announced) {
      // UCX picks lanes when the endpoint first carries data: report them after the first size.
      report.lanes = engine->transports();
      if (sink.started) sink.started(report);
      announced = true;
    }
    if (perf.test == TestKind::kBw && sink.bw_row) sink.bw_row(report.bw.back());
    if (perf.test == TestKind::kLat && sink.lat_row) sink.lat_row(report.lat.back());
    TERN_CHECK(ch.send(row_msg, deadline_in(config.timeout_s)));
  }
  TERN_CHECK(ch.send({{"type", "bye"}}, deadline_in(config.timeout_s)));
  TERN_CHECK(expect(ch, "bye", deadline_in(config.timeout_s)));
  TERN_CHECK(engine->close(deadline_in(5)));
  return report;
}

Result<SessionReport> ucx_server(ControlChannel& ch, const PerfOptions& perf,
                                 const std::vector<std::byte>& client_address, const SessionConfig& config,
                                 const RowSink& sink) {
  // A refusal must reach the client as a message, not as a closed socket.
  auto refuse = [&](const Status& s) -> Status {
    (void)ch.send({{"error", s.message()}}, deadline_in(5));
    return s;
  };
  auto buffer = Buffer::allocate(perf.memory, 2 * largest(perf.sizes));
  if (!buffer) return refuse(buffer.status());
  auto engine = UcxEngine::create(perf.memory);
  if (!engine) return refuse(engine.status());
  if (Status s = (*engine)->connect(client_address); !s) return refuse(s);
  TERN_CHECK(
      ch.send({{"type", "welcome"}, {"ucx_address", to_hex((*engine)->address())}}, deadline_in(config.timeout_s)));

  SessionReport report{"server", ch.peer(), "ucx", UcxEngine::ucx_version(), {}, perf, {}, {}};
  UcxSizeRunner runner{**engine, perf, false, buffer->data(), second_half(*buffer, perf), round_timeout(config)};
  bool announced = false;
  for (;;) {
    TERN_ASSIGN_OR_RETURN(nlohmann::json m, ch.receive(deadline_in(round_timeout(config))));
    TERN_CHECK(peer_error(m, ch.peer()));
    if (m.value("type", "") == "bye") break;
    if (m.value("type", "") != "size")
      return corrupt_data(fmt::format("{}: unexpected control message {}", ch.peer(), m.dump().substr(0, 200)));
    TERN_ASSIGN_OR_RETURN(std::size_t bytes, field<std::size_t>(m, "bytes", ch.peer()));
    if (std::find(perf.sizes.begin(), perf.sizes.end(), bytes) == perf.sizes.end())
      return corrupt_data(fmt::format("{}: size {} is not among the agreed sizes", ch.peer(), bytes));
    TERN_CHECK(ch.send({{"type", "ready"}}, deadline_in(config.timeout_s)));
    if (perf.test == TestKind::kBw) {
      TERN_ASSIGN_OR_RETURN(BwSideResult mine, runner.bw(bytes));
      TERN_CHECK(ch.send(side_json(mine), deadline_in(config.timeout_s)));
    } else {
      TERN_CHECK(runner.lat(bytes));
      TERN_CHECK(ch.send({{"type", "side"}}, deadline_in(config.timeout_s)));
    }
    TERN_ASSIGN_OR_RETURN(nlohmann::json row_msg, expect(ch, "row", deadline_in(config.timeout_s)));
    if (!row_msg.contains("row")) return corrupt_data(ch.peer() + ": row message without a row");
    if (!announced) {
      report.lanes = (*engine)->transports();
      if (sink.started) sink.started(report);
      announced = true;
    }
    if (perf.test == TestKind::kBw) {
      TERN_ASSIGN_OR_RETURN(BwRow row, bw_row_from_json(row_msg["row"], ch.peer()));
      report.bw.push_back(row);
      if (sink.bw_row) sink.bw_row(row);
    } else {
      TERN_ASSIGN_OR_RETURN(LatRow row, lat_row_from_json(row_msg["row"], ch.peer()));
      report.lat.push_back(row);
      if (sink.lat_row) sink.lat_row(row);
    }
  }
  TERN_CHECK(ch.send({{"type", "bye"}}, deadline_in(config.timeout_s)));
  TERN_CHECK((*engine)->close(deadline_in(5)));
  return report;
}

}  // namespace

Result<SessionReport> run_client(ControlChannel& channel, const SessionConfig& config, const RowSink& sink) {
  TERN_CHECK(validate(config.perf));
  if (config.perf.transport == TransportKind::kVerbs) return verbs_client(channel, config, sink);
  return ucx_client(channel, config, sink);
}

Result<SessionReport> serve_client(ControlChannel& ch, const nlohmann::json& hello, const PerfOptions* expected,
                                   const SessionConfig& config, const RowSink& sink) {
  auto refuse = [&](const Status& s) -> Status {
    (void)ch.send({{"error", s.message()}}, deadline_in(5));
    return s;
  };
  if (hello.value("type", "") != "hello" || hello.value("proto", 0) != kControlProtocol)
    return refuse(
        corrupt_data(fmt::format("{} is not an ib-bench client of protocol {}", ch.peer(), kControlProtocol)));
  if (!hello.contains("options")) return refuse(corrupt_data(ch.peer() + ": hello without options"));
  auto theirs = perf_options_from_json(hello["options"]);
  if (!theirs) return refuse(theirs.status());
  if (expected != nullptr) {
    const std::vector<std::string> diff = differences(*expected, *theirs);
    if (!diff.empty()) {
      std::string text = "the client's options differ from the server's (start both with the same options): ";
      for (std::size_t i = 0; i < diff.size(); ++i) text += (i ? "; " : "") + diff[i];
      (void)ch.send({{"error", text}}, deadline_in(5));
      return invalid_argument(fmt::format("{}: {}", ch.peer(), text));
    }
  }
  if (theirs->transport == TransportKind::kVerbs) return verbs_serve(ch, hello, *theirs, config, sink);
  auto address_hex = field<std::string>(hello, "ucx_address", ch.peer());
  if (!address_hex) return refuse(address_hex.status());
  auto address = from_hex(*address_hex);
  if (!address) return refuse(address.status());
  return ucx_server(ch, *theirs, *address, config, sink);
}

Result<SessionReport> run_session(const SessionConfig& config, const RowSink& sink) {
  TERN_CHECK(validate(config.perf));
  // Fail before any network wait when the hardware is absent (perftest does the same).
  if (config.perf.transport == TransportKind::kVerbs) TERN_CHECK(verbs_precheck(config));
  if (config.perf.memory == MemoryKind::kCuda) TERN_CHECK(Buffer::allocate(MemoryKind::kCuda, 1));
  if (config.server) {
    TERN_ASSIGN_OR_RETURN(ControlListener listener, ControlListener::listen(config.bind_address, config.port));
    TERN_ASSIGN_OR_RETURN(ControlChannel ch, listener.accept(deadline_in(config.timeout_s)));
    TERN_ASSIGN_OR_RETURN(nlohmann::json hello, ch.receive(deadline_in(config.timeout_s)));
    return serve_client(ch, hello, &config.perf, config, sink);
  }
  TERN_ASSIGN_OR_RETURN(ControlChannel ch,
                        ControlChannel::connect(config.host, config.port, deadline_in(config.timeout_s)));
  return run_client(ch, config, sink);
}

}  // namespace tern::ibbench
