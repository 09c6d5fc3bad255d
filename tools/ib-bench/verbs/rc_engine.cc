#include "verbs/rc_engine.h"

#include <infiniband/verbs.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "perf/memory.h"
#include "verbs/devices.h"
#include "verbs/verbs_raii.h"

namespace tern::ibbench {

namespace {

constexpr std::uint32_t kEndImmediate = 0x1b1b0001;

// What the peer needs to reach this side's QP and buffer.
struct RcAddress {
  std::uint32_t qpn = 0;
  std::uint32_t psn = 0;
  std::uint16_t lid = 0;
  std::uint8_t gid[16] = {};
  std::uint64_t addr = 0;
  std::uint32_t rkey = 0;
  int mtu = IBV_MTU_1024;
};

nlohmann::json to_json(const RcAddress& a) {
  std::vector<int> gid(a.gid, a.gid + 16);
  return {{"qpn", a.qpn},   {"psn", a.psn},   {"lid", a.lid}, {"gid", gid},
          {"addr", a.addr}, {"rkey", a.rkey}, {"mtu", a.mtu}};
}

Result<RcAddress> rc_address_from_json(const nlohmann::json& j, const std::string& peer) {
  try {
    RcAddress a;
    a.qpn = j.at("qpn").get<std::uint32_t>();
    a.psn = j.at("psn").get<std::uint32_t>();
    a.lid = j.at("lid").get<std::uint16_t>();
    const auto gid = j.at("gid").get<std::vector<int>>();
    if (gid.size() != 16) return corrupt_data(peer + ": GID of the wrong length");
    for (std::size_t i = 0; i < 16; ++i) a.gid[i] = static_cast<std::uint8_t>(gid[i]);
    a.addr = j.at("addr").get<std::uint64_t>();
    a.rkey = j.at("rkey").get<std::uint32_t>();
    a.mtu = j.at("mtu").get<int>();
    return a;
  } catch (const nlohmann::json::exception& e) {
    return corrupt_data(fmt::format("{}: bad verbs address: {}", peer, e.what()));
  }
}

Status verbs_error(const char* call, int rc) {
  return unavailable(fmt::format("{} failed: {}", call, std::strerror(rc > 0 ? rc : errno)));
}

// One RC connection: device, PD, buffer + MR, send and receive CQs, QP.
class RcConnection {
 public:
  static Result<std::unique_ptr<RcConnection>> open(const SessionConfig& config, std::size_t bytes, unsigned depth) {
    auto c = std::unique_ptr<RcConnection>(new RcConnection());
    TERN_ASSIGN_OR_RETURN(DeviceList list, DeviceList::get());
    TERN_ASSIGN_OR_RETURN(ibv_device * dev, list.find(config.ib_device));
    c->device_name_ = ibv_get_device_name(dev);
    TERN_ASSIGN_OR_RETURN(c->ctx_, open_device(dev));
    c->port_ = config.ib_port;
    ibv_port_attr port{};
    if (const int rc = ibv_query_port(c->ctx_.get(), static_cast<std::uint8_t>(c->port_), &port); rc != 0)
      return verbs_error("ibv_query_port", rc);
    if (port.state != IBV_PORT_ACTIVE)
      return unavailable(
          fmt::format("{} port {} is {} (not ACTIVE): check the link (ibstat) and, on InfiniBand, the subnet manager",
                      c->device_name_, c->port_, port_state_name(port.state)));
    c->ethernet_ = port.link_layer == IBV_LINK_LAYER_ETHERNET;
    c->lid_ = port.lid;
    c->mtu_ = port.active_mtu;
    TERN_CHECK(c->choose_gid(config.gid_index, port.gid_tbl_len));

    c->pd_.reset(ibv_alloc_pd(c->ctx_.get()));
    if (!c->pd_) return verbs_error("ibv_alloc_pd", 0);
    TERN_ASSIGN_OR_RETURN(c->buffer_, Buffer::allocate(config.perf.memory, bytes));
    const int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    c->mr_.reset(ibv_reg_mr(c->pd_.get(), c->buffer_.data(), std::max<std::size_t>(bytes, 1), access));
    if (!c->mr_)
      return unavailable(
          fmt::format("ibv_reg_mr of {} bytes failed: {} (memlock limit? GPU memory needs nvidia-peermem)", bytes,
                      std::strerror(errno)));
    const int cqe = static_cast<int>(depth) * 2 + 16;
    c->send_cq_.reset(ibv_create_cq(c->ctx_.get(), cqe, nullptr, nullptr, 0));
    c->recv_cq_.reset(ibv_create_cq(c->ctx_.get(), cqe, nullptr, nullptr, 0));
    if (!c->send_cq_ || !c->recv_cq_) return verbs_error("ibv_create_cq", 0);
    ibv_qp_init_attr init{};
    init.send_cq = c->send_cq_.get();
    init.recv_cq = c->recv_cq_.get();
    init.qp_type = IBV_QPT_RC;
    init.cap.max_send_wr = depth + 2;
    init.cap.max_recv_wr = depth + 2;
    init.cap.max_send_sge = 1;
    init.cap.max_recv_sge = 1;
    c->qp_.reset(ibv_create_qp(c->pd_.get(), &init));
    if (!c->qp_) return verbs_error("ibv_create_qp", 0);
    c->depth_ = depth;

    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_INIT;
    attr.pkey_index = 0;
    attr.port_num = static_cast<std::uint8_t>(c->port_);
    attr.qp_access_flags = static_cast<unsigned>(access);
    if (const int rc =
            ibv_modify_qp(c->qp_.get(), &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
        rc != 0)
      return verbs_error("ibv_modify_qp(INIT)", rc);
    std::random_device rd;
    c->psn_ = rd() & 0xffffff;
    return c;
  }

  RcAddress local() const {
    RcAddress a;
    a.qpn = qp_->qp_num;
    a.psn = psn_;
    a.lid = lid_;
    std::memcpy(a.gid, gid_.raw, 16);
    a.addr = reinterpret_cast<std::uintptr_t>(buffer_.data());
    a.rkey = mr_->rkey;
    a.mtu = mtu_;
    return a;
  }

  Status connect(const RcAddress& remote) {
    remote_ = remote;
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_RTR;
    attr.path_mtu = static_cast<ibv_mtu>(std::min(static_cast<int>(mtu_), remote.mtu));
    attr.dest_qp_num = remote.qpn;
    attr.rq_psn = remote.psn;
    attr.max_dest_rd_atomic = 1;
    attr.min_rnr_timer = 12;
    attr.ah_attr.dlid = remote.lid;
    attr.ah_attr.port_num = static_cast<std::uint8_t>(port_);
    if (ethernet_ || remote.lid == 0) {
      attr.ah_attr.is_global = 1;
      std::memcpy(attr.ah_attr.grh.dgid.raw, remote.gid, 16);
      attr.ah_attr.grh.sgid_index = static_cast<std::uint8_t>(gid_index_);
      attr.ah_attr.grh.hop_limit = 64;
    }
    if (const int rc = ibv_modify_qp(qp_.get(), &attr,
                                     IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                                         IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
        rc != 0)
      return verbs_error("ibv_modify_qp(RTR)", rc);
    attr = ibv_qp_attr{};
    attr.qp_state = IBV_QPS_RTS;
    attr.timeout = 14;
    attr.retry_cnt = 7;
    attr.rnr_retry = 7;  // infinite: a SEND waits for the receiver to post
    attr.sq_psn = psn_;
    attr.max_rd_atomic = 1;
    if (const int rc = ibv_modify_qp(qp_.get(), &attr,
                                     IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                                         IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
        rc != 0)
      return verbs_error("ibv_modify_qp(RTS)", rc);
    return Status::ok();
  }

  Status post_send(ibv_wr_opcode op, std::size_t bytes, std::size_t offset, std::uint32_t imm = 0) {
    ibv_sge sge{};
    sge.addr = reinterpret_cast<std::uintptr_t>(buffer_.data()) + offset;
    sge.length = static_cast<std::uint32_t>(bytes);
    sge.lkey = mr_->lkey;
    ibv_send_wr wr{};
    wr.sg_list = &sge;
    wr.num_sge = bytes > 0 ? 1 : 0;
    wr.opcode = op;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.imm_data = htonl_(imm);
    if (op == IBV_WR_RDMA_WRITE || op == IBV_WR_RDMA_WRITE_WITH_IMM) {
      wr.wr.rdma.remote_addr = remote_.addr + offset;
      wr.wr.rdma.rkey = remote_.rkey;
    }
    ibv_send_wr* bad = nullptr;
    if (const int rc = ibv_post_send(qp_.get(), &wr, &bad); rc != 0) return verbs_error("ibv_post_send", rc);
    return Status::ok();
  }

  Status post_recv(std::size_t bytes) {
    ibv_sge sge{};
    sge.addr = reinterpret_cast<std::uintptr_t>(buffer_.data());
    sge.length = static_cast<std::uint32_t>(bytes);
    sge.lkey = mr_->lkey;
    ibv_recv_wr wr{};
    wr.sg_list = &sge;
    wr.num_sge = 1;
    ibv_recv_wr* bad = nullptr;
    if (const int rc = ibv_post_recv(qp_.get(), &wr, &bad); rc != 0) return verbs_error("ibv_post_recv", rc);
    ++recvs_posted_;
    return Status::ok();
  }

  // Polls a CQ: completions found (0..n); an error for a failed work request.
  Result<int> poll(ibv_cq* cq, ibv_wc* wc, int n) {
    const int got = ibv_poll_cq(cq, n, wc);
    if (got < 0) return unavailable("ibv_poll_cq failed");
    for (int i = 0; i < got; ++i)
      if (wc[i].status != IBV_WC_SUCCESS)
        return Status(StatusCode::kPeerFailure,
                      fmt::format("work request failed: {} (the peer may have gone)", ibv_wc_status_str(wc[i].status)));
    return got;
  }

  ibv_cq* send_cq() const { return send_cq_.get(); }
  ibv_cq* recv_cq() const { return recv_cq_.get(); }
  volatile std::uint8_t* bytes() const { return static_cast<volatile std::uint8_t*>(buffer_.data()); }
  const Buffer& buffer() const { return buffer_; }
  unsigned depth() const { return depth_; }
  std::uint64_t& recvs_posted() { return recvs_posted_; }
  std::string describe() const {
    return fmt::format("{}:{} ({}, gid {})", device_name_, port_, ethernet_ ? "RoCE v2" : "InfiniBand", gid_index_);
  }
  const std::string& device_name() const { return device_name_; }

 private:
  RcConnection() = default;
  static std::uint32_t htonl_(std::uint32_t v) { return __builtin_bswap32(v); }

  Status choose_gid(int requested, int table_length) {
    if (requested >= 0) {
      gid_index_ = requested;
    } else if (ethernet_) {
      gid_index_ = -1;
      for (int i = 0; i < table_length && gid_index_ < 0; ++i) {
        ibv_gid_entry e{};
        if (ibv_query_gid_ex(ctx_.get(), static_cast<std::uint32_t>(port_), static_cast<std::uint32_t>(i), &e, 0) ==
                0 &&
            e.gid_type == IBV_GID_TYPE_ROCE_V2)
          gid_index_ = i;
      }
      if (gid_index_ < 0)
        return unavailable(fmt::format("{} port {}: no RoCE v2 GID (is an IP address configured on the interface?)",
                                       device_name_, port_));
    } else {
      gid_index_ = 0;
    }
    if (const int rc = ibv_query_gid(ctx_.get(), static_cast<std::uint8_t>(port_), gid_index_, &gid_); rc != 0)
      return verbs_error("ibv_query_gid", rc);
    return Status::ok();
  }

  std::string device_name_;
  DeviceContext ctx_;
  ProtectionDomain pd_;
  Buffer buffer_;
  MemoryRegion mr_;
  CompletionQueue send_cq_, recv_cq_;
  QueuePair qp_;
  int port_ = 1;
  bool ethernet_ = false;
  std::uint16_t lid_ = 0;
  ibv_mtu mtu_ = IBV_MTU_1024;
  int gid_index_ = 0;
  ibv_gid gid_{};
  std::uint32_t psn_ = 0;
  unsigned depth_ = 0;
  RcAddress remote_;
  std::uint64_t recvs_posted_ = 0;
};

// ---- measurement rounds ---------------------------------------------------------------------------

class Watch {
 public:
  explicit Watch(Deadline d) : d_(d) {}
  bool expired() { return (++n_ & 1023u) == 0 && Clock::now() > d_; }

 private:
  Deadline d_;
  unsigned n_ = 0;
};

Status too_slow() { return Status(StatusCode::kTimeout, "verbs round: no completion before the deadline (--timeout)"); }

// Sends `iterations` messages (or for `duration_s`) with at most `window` in flight; SEND rounds
// end with the END immediate. Also drains receives when `receive` (bidirectional SEND).
Result<BwSideResult> bw_round(RcConnection& c, VerbsOp verb, std::size_t bytes, std::uint64_t iterations,
                              double duration_s, unsigned window, bool send, bool receive, Deadline deadline) {
  Watch watch(deadline);
  BwSideResult result;
  std::uint64_t posted = 0, completed = 0;
  bool sending = send, end_posted = false, end_done = !send || verb == VerbsOp::kWrite;
  bool peer_end = !receive || verb == VerbsOp::kWrite;
  const ibv_wr_opcode op = verb == VerbsOp::kWrite ? IBV_WR_RDMA_WRITE : IBV_WR_SEND;
  if (receive && verb == VerbsOp::kSend)
    while (c.recvs_posted() < c.depth()) TERN_CHECK(c.post_recv(bytes));
  const Clock::time_point t0 = Clock::now();
  const auto stop_at = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
  const std::uint64_t step = iterations > 0 ? std::max<std::uint64_t>(1, iterations / 32) : 0;
  std::uint64_t next_mark = step;
  if (send) result.checkpoints.push_back({0, 0});
  ibv_wc wc[32];
  while (sending || completed < posted || !end_done || !peer_end) {
    while (sending && posted - completed < window) {
      if (iterations > 0 ? posted == iterations : Clock::now() >= stop_at) {
        sending = false;
        break;
      }
      TERN_CHECK(c.post_send(op, bytes, 0));
      ++posted;
    }
    if (send && !sending && completed == posted && !end_posted && verb == VerbsOp::kSend) {
      TERN_CHECK(c.post_send(IBV_WR_SEND_WITH_IMM, 0, 0, kEndImmediate));
      end_posted = true;
    }
    TERN_ASSIGN_OR_RETURN(int n, c.poll(c.send_cq(), wc, 32));
    for (int i = 0; i < n; ++i) {
      if (wc[i].opcode == IBV_WC_SEND && end_posted && completed == posted)
        end_done = true;
      else
        ++completed;
    }
    if (step > 0 && completed >= next_mark) {
      result.checkpoints.push_back({completed, std::chrono::duration<double>(Clock::now() - t0).count()});
      next_mark += step;
    }
    if (!peer_end) {
      TERN_ASSIGN_OR_RETURN(int r, c.poll(c.recv_cq(), wc, 32));
      for (int i = 0; i < r; ++i) {
        --c.recvs_posted();
        if ((wc[i].wc_flags & IBV_WC_WITH_IMM) != 0) peer_end = true;
      }
      while (c.recvs_posted() < c.depth()) TERN_CHECK(c.post_recv(bytes));
    }
    if (n == 0 && watch.expired()) return too_slow();
  }
  result.messages = posted;
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return result;
}

// SEND ping-pong; initiator returns one-way samples (µs).
Result<std::vector<double>> send_lat(RcConnection& c, bool initiator, std::size_t bytes, std::uint64_t iterations,
                                     double duration_s, Deadline deadline) {
  Watch watch(deadline);
  std::vector<double> samples;
  ibv_wc wc[4];
  auto wait_one = [&](ibv_cq* cq, bool* imm) -> Status {
    for (;;) {
      TERN_ASSIGN_OR_RETURN(int n, c.poll(cq, wc, 1));
      if (n == 1) {
        if (imm != nullptr) *imm = (wc[0].wc_flags & IBV_WC_WITH_IMM) != 0;
        return Status::ok();
      }
      if (watch.expired()) return too_slow();
    }
  };
  while (c.recvs_posted() < 1) TERN_CHECK(c.post_recv(bytes));
  if (initiator) {
    const auto stop_at =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
    for (std::uint64_t i = 0; iterations > 0 ? i < iterations : Clock::now() < stop_at; ++i) {
      const Clock::time_point t = Clock::now();
      TERN_CHECK(c.post_send(IBV_WR_SEND, bytes, 0));
      TERN_CHECK(wait_one(c.send_cq(), nullptr));
      TERN_CHECK(wait_one(c.recv_cq(), nullptr));
      --c.recvs_posted();
      TERN_CHECK(c.post_recv(bytes));
      samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count() / 2);
    }
    TERN_CHECK(c.post_send(IBV_WR_SEND_WITH_IMM, 0, 0, kEndImmediate));
    TERN_CHECK(wait_one(c.send_cq(), nullptr));
    return samples;
  }
  for (;;) {
    bool end = false;
    TERN_CHECK(wait_one(c.recv_cq(), &end));
    --c.recvs_posted();
    TERN_CHECK(c.post_recv(bytes));
    if (end) return samples;
    TERN_CHECK(c.post_send(IBV_WR_SEND, bytes, 0));
    TERN_CHECK(wait_one(c.send_cq(), nullptr));
  }
}

// WRITE ping-pong through the last byte of the buffers (perftest's write_lat).
Result<std::vector<double>> write_lat(RcConnection& c, bool initiator, std::size_t bytes, std::uint64_t iterations,
                                      double duration_s, Deadline deadline) {
  if (c.buffer().kind() != MemoryKind::kHost)
    return invalid_argument("verbs WRITE latency polls host memory: use --mem host or --verb send");
  Watch watch(deadline);
  std::vector<double> samples;
  volatile std::uint8_t* last = c.bytes() + (bytes - 1);
  ibv_wc wc[1];
  auto write_seq = [&](std::uint8_t seq) -> Status {
    c.bytes()[bytes - 1] = seq;  // the byte that travels last
    TERN_CHECK(c.post_send(IBV_WR_RDMA_WRITE, bytes, 0));
    for (;;) {
      TERN_ASSIGN_OR_RETURN(int n, c.poll(c.send_cq(), wc, 1));
      if (n == 1) return Status::ok();
      if (watch.expired()) return too_slow();
    }
  };
  auto wait_change = [&](std::uint8_t previous) -> Result<std::uint8_t> {
    for (;;) {
      const std::uint8_t v = *last;
      if (v != previous) return v;
      if (watch.expired()) return too_slow();
    }
  };
  std::uint8_t seq = 0;
  if (initiator) {
    const auto stop_at =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
    for (std::uint64_t i = 0; iterations > 0 ? i < iterations : Clock::now() < stop_at; ++i) {
      const std::uint8_t previous = *last;
      seq = static_cast<std::uint8_t>(seq % 255 + 1);
      const Clock::time_point t = Clock::now();
      TERN_CHECK(write_seq(seq));
      TERN_CHECK(wait_change(previous));
      samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count() / 2);
    }
    TERN_CHECK(write_seq(0));
    return samples;
  }
  std::uint8_t previous = *last;
  for (;;) {
    TERN_ASSIGN_OR_RETURN(std::uint8_t v, wait_change(previous));
    if (v == 0) return samples;
    previous = v;
    TERN_CHECK(write_seq(v));
  }
}

struct Side {
  RcConnection& c;
  const PerfOptions& perf;
  bool client;
  double timeout_s;

  Result<BwSideResult> bw(std::size_t bytes) {
    const bool send = client || perf.bidirectional;
    const bool receive = !client || perf.bidirectional;
    if (perf.warmup > 0)
      TERN_CHECK(bw_round(c, perf.verb, bytes, perf.warmup, 0, perf.window, send, receive, deadline_in(timeout_s)));
    return bw_round(c, perf.verb, bytes, perf.iterations, perf.duration_s, perf.window, send, receive,
                    deadline_in(timeout_s));
  }
  Result<std::vector<double>> lat(std::size_t bytes) {
    auto run = perf.verb == VerbsOp::kWrite ? write_lat : send_lat;
    if (perf.warmup > 0) TERN_CHECK(run(c, client, bytes, perf.warmup, 0, deadline_in(timeout_s)));
    return run(c, client, bytes, perf.iterations, perf.duration_s, deadline_in(timeout_s));
  }
};

std::size_t largest(const std::vector<std::size_t>& sizes) { return *std::max_element(sizes.begin(), sizes.end()); }

Result<nlohmann::json> expect(ControlChannel& ch, const char* type, Deadline deadline) {
  TERN_ASSIGN_OR_RETURN(nlohmann::json m, ch.receive(deadline));
  TERN_CHECK(peer_error(m, ch.peer()));
  if (m.value("type", "") != type)
    return corrupt_data(fmt::format("{}: expected '{}', got {}", ch.peer(), type, m.dump().substr(0, 200)));
  return m;
}

// RC completions mean the receiver's HCA acknowledged the data: the sender's checkpoints are good.
nlohmann::json side_json(const BwSideResult& s) {
  nlohmann::json cps = nlohmann::json::array();
  for (const Checkpoint& c : s.checkpoints) cps.push_back({c.messages, c.seconds});
  return {{"type", "side"}, {"messages", s.messages}, {"seconds", s.seconds}, {"checkpoints", cps}};
}

// The size loop, shared by both roles (the client drives, the server follows).
Result<SessionReport> run_sizes(ControlChannel& ch, RcConnection& c, const PerfOptions& perf, bool client,
                                const SessionConfig& config, const RowSink& sink) {
  SessionReport report{client ? "client" : "server", ch.peer(), "verbs", c.device_name(), {c.describe()}, perf, {}, {}};
  if (sink.started) sink.started(report);
  Side side{c, perf, client, config.timeout_s + perf.duration_s * 2};
  const auto dl = [&] { return deadline_in(config.timeout_s + perf.duration_s * 2); };
  for (std::size_t bytes : perf.sizes) {
    if (client) {
      TERN_CHECK(ch.send({{"type", "size"}, {"bytes", bytes}}, dl()));
      TERN_CHECK(expect(ch, "ready", dl()));
    } else {
      TERN_ASSIGN_OR_RETURN(nlohmann::json m, expect(ch, "size", dl()));
      if (m.value("bytes", std::size_t{0}) != bytes) return corrupt_data(ch.peer() + ": sizes out of step");
      TERN_CHECK(ch.send({{"type", "ready"}}, dl()));
    }
    if (perf.test == TestKind::kBw) {
      TERN_ASSIGN_OR_RETURN(BwSideResult mine, side.bw(bytes));
      // Both sides report their sending half; the client adds them up (-b) and both print the row.
      TERN_CHECK(ch.send(side_json(mine), dl()));
      TERN_ASSIGN_OR_RETURN(nlohmann::json theirs_msg, expect(ch, "side", dl()));
      BwSideResult theirs;
      theirs.messages = theirs_msg.value("messages", std::uint64_t{0});
      theirs.seconds = theirs_msg.value("seconds", 0.0);
      for (const auto& cp : theirs_msg.value("checkpoints", nlohmann::json::array()))
        if (cp.is_array() && cp.size() == 2 && cp[0].is_number_unsigned() && cp[1].is_number())
          theirs.checkpoints.push_back({cp[0].get<std::uint64_t>(), cp[1].get<double>()});
      const BwSideResult& sender = client ? mine : theirs;
      BwRow row = bw_row(bytes, sender.messages, sender.seconds, sender.checkpoints);
      if (perf.bidirectional) {
        const BwSideResult& other = client ? theirs : mine;
        row = add_directions(row, bw_row(bytes, other.messages, other.seconds, other.checkpoints));
      }
      report.bw.push_back(row);
      if (sink.bw_row) sink.bw_row(row);
    } else {
      TERN_ASSIGN_OR_RETURN(std::vector<double> samples, side.lat(bytes));
      LatRow row = lat_row(bytes, samples);
      if (client) {
        TERN_CHECK(ch.send({{"type", "row"},
                            {"row",
                             {{"bytes", row.bytes},
                              {"iterations", row.iterations},
                              {"t_min", row.t_min},
                              {"t_max", row.t_max},
                              {"t_typical", row.t_typical},
                              {"t_avg", row.t_avg},
                              {"t_stdev", row.t_stdev},
                              {"p99", row.p99},
                              {"p999", row.p999}}}},
                           dl()));
      } else {
        TERN_ASSIGN_OR_RETURN(nlohmann::json m, expect(ch, "row", dl()));
        const nlohmann::json& r = m["row"];
        row.iterations = r.value("iterations", std::uint64_t{0});
        row.t_min = r.value("t_min", 0.0);
        row.t_max = r.value("t_max", 0.0);
        row.t_typical = r.value("t_typical", 0.0);
        row.t_avg = r.value("t_avg", 0.0);
        row.t_stdev = r.value("t_stdev", 0.0);
        row.p99 = r.value("p99", 0.0);
        row.p999 = r.value("p999", 0.0);
      }
      report.lat.push_back(row);
      if (sink.lat_row) sink.lat_row(row);
    }
  }
  if (client) {
    TERN_CHECK(ch.send({{"type", "bye"}}, dl()));
    TERN_CHECK(expect(ch, "bye", dl()));
  } else {
    TERN_CHECK(expect(ch, "bye", dl()));
    TERN_CHECK(ch.send({{"type", "bye"}}, dl()));
  }
  return report;
}

unsigned queue_depth(const PerfOptions& perf) { return perf.test == TestKind::kBw ? perf.window : 4; }

}  // namespace

Status verbs_precheck(const SessionConfig& config) {
  TERN_ASSIGN_OR_RETURN(DeviceList list, DeviceList::get());
  TERN_CHECK(list.find(config.ib_device));
  return Status::ok();
}

Result<SessionReport> verbs_client(ControlChannel& ch, const SessionConfig& config, const RowSink& sink) {
  const PerfOptions& perf = config.perf;
  TERN_ASSIGN_OR_RETURN(auto conn, RcConnection::open(config, largest(perf.sizes), queue_depth(perf)));
  TERN_CHECK(ch.send(
      {{"type", "hello"}, {"proto", kControlProtocol}, {"options", to_json(perf)}, {"verbs", to_json(conn->local())}},
      deadline_in(config.timeout_s)));
  TERN_ASSIGN_OR_RETURN(nlohmann::json welcome, expect(ch, "welcome", deadline_in(config.timeout_s)));
  if (!welcome.contains("verbs")) return corrupt_data(ch.peer() + ": welcome without verbs address");
  TERN_ASSIGN_OR_RETURN(RcAddress remote, rc_address_from_json(welcome["verbs"], ch.peer()));
  TERN_CHECK(conn->connect(remote));
  // Both QPs must be in RTR before either side sends.
  TERN_CHECK(ch.send({{"type", "connected"}}, deadline_in(config.timeout_s)));
  TERN_CHECK(expect(ch, "connected", deadline_in(config.timeout_s)));
  return run_sizes(ch, *conn, perf, true, config, sink);
}

Result<SessionReport> verbs_serve(ControlChannel& ch, const nlohmann::json& hello, const PerfOptions& perf,
                                  const SessionConfig& config, const RowSink& sink) {
  auto refuse = [&](const Status& s) -> Status {
    (void)ch.send({{"error", s.message()}}, deadline_in(5));
    return s;
  };
  if (!hello.contains("verbs")) return refuse(corrupt_data(ch.peer() + ": hello without verbs address"));
  auto remote = rc_address_from_json(hello["verbs"], ch.peer());
  if (!remote) return refuse(remote.status());
  SessionConfig local = config;
  local.perf = perf;
  auto conn = RcConnection::open(local, largest(perf.sizes), queue_depth(perf));
  if (!conn) return refuse(conn.status());
  if (Status s = (*conn)->connect(*remote); !s) return refuse(s);
  TERN_CHECK(ch.send({{"type", "welcome"}, {"verbs", to_json((*conn)->local())}}, deadline_in(config.timeout_s)));
  TERN_CHECK(expect(ch, "connected", deadline_in(config.timeout_s)));
  TERN_CHECK(ch.send({{"type", "connected"}}, deadline_in(config.timeout_s)));
  return run_sizes(ch, **conn, perf, false, local, sink);
}

}  // namespace tern::ibbench
