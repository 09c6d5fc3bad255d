#include "session.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>

#include "group_state.h"
#include "tern/kernels/codec.h"
#include "tern/transport/collective.h"

namespace tern::daemon {

namespace asio = boost::asio;
using protocol::MessageType;

namespace {

constexpr std::size_t kMaxQueuedFds = 16;
constexpr std::size_t kMaxQueuedReplies = 64;  // a client that never reads its replies is dropped
constexpr std::uint32_t kAbiVersion = 0;       // TERN_ABI_VERSION

}  // namespace

Session::Session(Daemon::Impl& daemon, asio::local::stream_protocol::socket socket, std::uint64_t id,
                 PeerCredentials creds)
    : daemon_(daemon), socket_(std::move(socket)), id_(id), creds_(creds) {}

Session::~Session() = default;

std::string Session::describe() const {
  return "client " + std::to_string(id_) + " (pid " + std::to_string(creds_.pid) + ", uid " +
         std::to_string(creds_.uid) + ")";
}

void Session::start() {
  socket_.non_blocking(true);
  wait_readable();
}

void Session::wait_readable() {
  socket_.async_wait(asio::socket_base::wait_read, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->closed_) {
      if (!self->closed_) self->close("connection error: " + ec.message(), false);
      return;
    }
    self->on_readable();
  });
}

void Session::on_readable() {
  bool eof = false;
  Status s = read_available(&eof);
  if (s) s = handle_frames();
  if (!s) {
    close(s.message(), true);
    return;
  }
  if (eof) {
    close("disconnected", false);
    return;
  }
  if (!closed_) wait_readable();
}

Status Session::read_available(bool* eof) {
  // Never buffer more than one frame's worth: a client cannot make us hold more than that.
  const std::size_t limit = protocol::kHeaderBytes + protocol::kMaxRequestPayloadBytes;
  for (;;) {
    if (inbuf_.size() >= limit) return Status::ok();  // a whole frame is buffered; handle it first
    std::uint8_t data[4096];
    const std::size_t want = std::min(sizeof data, limit - inbuf_.size());
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * protocol::kMaxFdsPerFrame)];
    iovec iov{data, want};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::ok();
      if (errno == EINTR) continue;
      *eof = true;
      return Status::ok();
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        fds_.emplace_back(fd);
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) return corrupt_data("sent more file descriptors than a frame may carry");
    if (fds_.size() > kMaxQueuedFds) return corrupt_data("sent file descriptors no frame announced");
    if (n == 0) {
      *eof = true;
      return Status::ok();
    }
    inbuf_.insert(inbuf_.end(), data, data + n);
  }
}

Status Session::handle_frames() {
  std::size_t pos = 0;
  while (!closed_ && inbuf_.size() - pos >= protocol::kHeaderBytes) {
    std::span<const std::uint8_t> rest(inbuf_.data() + pos, inbuf_.size() - pos);
    TERN_ASSIGN_OR_RETURN(protocol::FrameHeader header,
                          protocol::decode_header(rest, protocol::kMaxRequestPayloadBytes));
    if (rest.size() < protocol::kHeaderBytes + header.payload_bytes) break;
    TERN_ASSIGN_OR_RETURN(protocol::Request request,
                          protocol::decode_request(header, rest.subspan(protocol::kHeaderBytes, header.payload_bytes)));
    if (fds_.size() < header.fd_count)
      return corrupt_data(std::string(protocol::message_type_name(protocol::request_type(request))) + " announces " +
                          std::to_string(header.fd_count) + " file descriptors, " + std::to_string(fds_.size()) +
                          " arrived");
    std::vector<UniqueFd> fds;
    for (std::uint16_t i = 0; i < header.fd_count; ++i) {
      fds.push_back(std::move(fds_.front()));
      fds_.pop_front();
    }
    pos += protocol::kHeaderBytes + header.payload_bytes;
    TERN_CHECK(handle(request, std::move(fds)));
  }
  inbuf_.erase(inbuf_.begin(), inbuf_.begin() + static_cast<std::ptrdiff_t>(pos));
  return Status::ok();
}

void Session::reply(MessageType type, const Status& status, const protocol::Reply& body) {
  send_reply(protocol::encode_reply(type, status, body));
}

Status Session::handle(const protocol::Request& request, std::vector<UniqueFd> fds) {
  const MessageType type = protocol::request_type(request);
  if (type == MessageType::kHello) return on_hello(std::get<protocol::Hello>(request), std::move(fds));
  if (!hello_done_) return corrupt_data(std::string(protocol::message_type_name(type)) + " before hello");
  switch (type) {
    case MessageType::kAllocArena:
      return on_alloc(std::get<protocol::AllocArena>(request), std::move(fds.at(0)));
    case MessageType::kFreeArena: {
      const auto id = std::get<protocol::FreeArena>(request).arena_id;
      auto it = arenas_.find(id);
      if (it == arenas_.end()) {
        reply(type, invalid_argument("free: arena " + std::to_string(id) + " is not one of this client's"));
      } else {
        arena_bytes_ -= it->second->size();
        --arena_count_;
        arenas_.erase(it);  // ops in flight keep their mapping until they complete
        reply(type, Status::ok());
      }
      return Status::ok();
    }
    case MessageType::kGetUniqueId: {
      auto id = daemon_.make_unique_id();
      protocol::Reply body;
      if (id) body.text = *id;
      reply(type, id.status(), body);
      return Status::ok();
    }
    case MessageType::kGroupJoin: return on_join(std::get<protocol::GroupJoin>(request));
    case MessageType::kGroupLeave: {
      const auto handle = std::get<protocol::GroupLeave>(request).group_handle;
      if (groups_.count(handle) == 0) {
        reply(type, invalid_argument("leave: group handle " + std::to_string(handle) + " is not one of this client's"));
      } else {
        leave_group(handle, "left the group");
        reply(type, Status::ok());
      }
      return Status::ok();
    }
    case MessageType::kRegisterCuda: {
      const auto& r = std::get<protocol::RegisterCuda>(request);
      auto mapping = CudaMapping::open(r.ipc_handle, r.bytes, r.device);
      protocol::Reply body;
      if (mapping) {
        body.u32 = next_cuda_id_++;
        cuda_.emplace(body.u32, std::move(*mapping));
      }
      reply(type, mapping.status(), body);
      return Status::ok();
    }
    case MessageType::kDeregisterCuda: {
      const auto id = std::get<protocol::DeregisterCuda>(request).registration_id;
      reply(type, cuda_.erase(id) ? Status::ok()
                                  : invalid_argument("deregister: GPU registration " + std::to_string(id) +
                                                     " is not one of this client's"));
      return Status::ok();
    }
    case MessageType::kStatus: {
      protocol::Reply body;
      body.text = daemon_.status_json();
      reply(type, Status::ok(), body);
      return Status::ok();
    }
    default: break;
  }
  return corrupt_data("unexpected message");
}

Status Session::on_hello(const protocol::Hello& hello, std::vector<UniqueFd> fds) {
  if (hello_done_) return corrupt_data("a second hello");
  if (hello.abi_version != kAbiVersion) {
    reply(MessageType::kHello, invalid_argument("libtern ABI " + std::to_string(hello.abi_version) +
                                                " is not served by this ternd (ABI " +
                                                std::to_string(kAbiVersion) + ")"));
    return Status::ok();
  }
  if (hello.ring_capacity != 0) {
    if (Status s = ring::check_capacity(hello.ring_capacity); !s) return corrupt_data("hello: " + s.message());
    const std::size_t need = ring::ring_bytes(hello.ring_capacity);
    if (hello.ring_bytes != need) return corrupt_data("hello: ring_bytes does not match the capacity");
    TERN_CHECK(check_eventfd(fds[1].get(), "the submission doorbell"));
    TERN_CHECK(check_eventfd(fds[2].get(), "the completion doorbell"));
    TERN_ASSIGN_OR_RETURN(ring_memory_, SharedMapping::map(std::move(fds[0]), need, need, "the ring file"));
    TERN_ASSIGN_OR_RETURN(ring::RingView view, ring::RingView::attach(ring_memory_->data(), need, hello.ring_capacity));
    {
      std::lock_guard lock(cq_mutex_);
      ring_ = view;
      ring_ok_ = true;
      completion_efd_ = std::move(fds[2]);
    }
    doorbell_ = std::make_unique<asio::posix::stream_descriptor>(socket_.get_executor(), fds[1].release());
    doorbell_->non_blocking(true);
    wait_doorbell();
  }
  hello_done_ = true;
  spdlog::debug("{}: hello (reported pid {}, ring capacity {})", describe(), hello.pid, hello.ring_capacity);
  protocol::Reply body;
  body.u64 = id_;
  body.text = daemon_.host_name;
  reply(MessageType::kHello, Status::ok(), body);
  return Status::ok();
}

Status Session::on_alloc(const protocol::AllocArena& alloc, UniqueFd fd) {
  const std::uint64_t limit = daemon_.config.max_client_memory_bytes;
  if (alloc.bytes == 0 || alloc.bytes > limit - std::min<std::uint64_t>(limit, arena_bytes_.load())) {
    reply(MessageType::kAllocArena,
          out_of_range("arena of " + std::to_string(alloc.bytes) + " bytes would exceed this client's limit of " +
                       std::to_string(limit) + " bytes (max_client_memory_bytes; " +
                       std::to_string(arena_bytes_.load()) + " in use)"));
    return Status::ok();
  }
  auto mapping = SharedMapping::map(std::move(fd), alloc.bytes, alloc.bytes, "arena");
  if (!mapping) return mapping.status();  // a lying client
  const std::uint32_t id = next_arena_id_++;
  arenas_.emplace(id, std::move(*mapping));
  arena_bytes_ += alloc.bytes;
  ++arena_count_;
  protocol::Reply body;
  body.u32 = id;
  reply(MessageType::kAllocArena, Status::ok(), body);
  return Status::ok();
}

Status Session::on_join(const protocol::GroupJoin& join) {
  const auto timeout = std::chrono::milliseconds(join.timeout_ms != 0 ? std::chrono::milliseconds(join.timeout_ms)
                                                                     : daemon_.config.join_timeout);
  auto group = daemon_.group_for_join(join.unique_id, creds_.uid, join.rank, join.nranks, join.local_size, join.seed,
                                      timeout);
  if (!group) {
    reply(MessageType::kGroupJoin, group.status());
    return Status::ok();
  }
  const std::uint32_t handle = next_group_handle_++;
  if (Status s = (*group)->add_member(shared_from_this(), handle, join.rank, join.nranks, join.local_size, join.seed,
                                      creds_.uid);
      !s) {
    daemon_.retire_group_if_empty(*group);
    reply(MessageType::kGroupJoin, s);
    return Status::ok();
  }
  groups_.emplace(handle, Membership{*group, join.rank});
  ++group_count_;
  spdlog::info("{}: joins group {} as rank {} of {} ({} per node)", describe(), (*group)->name(), join.rank,
               join.nranks, join.local_size);
  return Status::ok();  // the worker replies once the group formed
}

void Session::leave_group(std::uint32_t handle, const std::string& why) {
  auto it = groups_.find(handle);
  if (it == groups_.end()) return;
  auto group = it->second.group;
  const int rank = it->second.rank;
  groups_.erase(it);
  --group_count_;
  group->member_left(rank, "rank " + std::to_string(rank) + " on host " + daemon_.host_name + " left (" + why + ")");
  daemon_.retire_group_if_empty(group);
}

void Session::wait_doorbell() {
  doorbell_->async_wait(asio::posix::descriptor_base::wait_read,
                        [self = shared_from_this()](const boost::system::error_code& ec) {
                          if (ec || self->closed_) return;
                          self->on_doorbell();
                        });
}

void Session::on_doorbell() {
  std::uint64_t value;
  while (::read(doorbell_->native_handle(), &value, sizeof value) > 0) {
  }
  if (poll_submissions() > 0) daemon_.keep_polling();
  if (closed_) return;
  daemon_.last_progress_ns = std::chrono::steady_clock::now().time_since_epoch().count();
  wait_doorbell();
}

std::size_t Session::poll_submissions() {
  if (closed_ || !doorbell_) return 0;
  auto drained = ring_.drain_submissions([this](const ring::Submission& s) {
    if (Status st = dispatch(s); !st) complete(s.user_data, st);
  });
  if (!drained) {
    close(drained.status().message(), true);
    return 0;
  }
  return *drained;
}

void Session::fail_unread_submissions(const Status& reason) {
  if (closed_ || !doorbell_) return;
  // A corrupt ring is reported by close() later; the entries before the corruption still fail.
  (void)ring_.drain_submissions([&](const ring::Submission& s) { complete(s.user_data, reason); });
}

Status Session::dispatch(const ring::Submission& s) {
  auto g = groups_.find(s.group_handle);
  if (g == groups_.end())
    return invalid_argument("allreduce: group handle " + std::to_string(s.group_handle) +
                            " is not one of this client's");
  if (s.dtype > static_cast<std::uint8_t>(kernels::DType::kBf16))
    return invalid_argument("allreduce: unknown dtype " + std::to_string(s.dtype));
  if (s.op > static_cast<std::uint8_t>(collective::ReduceOp::kMean))
    return invalid_argument("allreduce: unknown reduce op " + std::to_string(s.op));
  if (s.scatter_codec > static_cast<std::uint8_t>(kernels::Codec::kSignEf) ||
      s.gather_codec > static_cast<std::uint8_t>(kernels::Codec::kSignEf))
    return invalid_argument("allreduce: unknown codec " + std::to_string(std::max(s.scatter_codec, s.gather_codec)));
  if (s.memory_kind > static_cast<std::uint8_t>(ring::MemoryKind::kCuda))
    return invalid_argument("allreduce: unknown memory kind " + std::to_string(s.memory_kind));
  const bool gpu = s.memory_kind == static_cast<std::uint8_t>(ring::MemoryKind::kCuda);
  std::shared_ptr<SharedMapping> arena;
  std::shared_ptr<CudaMapping> cuda;
  if (gpu) {
    auto c = cuda_.find(s.memory_id);
    if (c == cuda_.end())
      return invalid_argument("allreduce: GPU registration " + std::to_string(s.memory_id) +
                              " is not one of this client's");
    cuda = c->second;
  } else {
    auto a = arenas_.find(s.memory_id);
    if (a == arenas_.end())
      return invalid_argument("allreduce: arena " + std::to_string(s.memory_id) + " is not one of this client's");
    arena = a->second;
  }
  const std::size_t elem = kernels::dtype_size(static_cast<kernels::DType>(s.dtype));
  const std::size_t size = gpu ? cuda->size() : arena->size();
  if (s.count == 0 || s.count > size / elem || s.offset > size - s.count * elem)
    return out_of_range("allreduce: " + std::to_string(s.count) + " elements of " + std::to_string(elem) +
                        " bytes at offset " + std::to_string(s.offset) + " do not fit in " +
                        (gpu ? "GPU buffer " : "arena ") +
                        std::to_string(s.memory_id) + " of " + std::to_string(size) + " bytes");
  if (s.offset % elem != 0) return invalid_argument("allreduce: buffer offset is not aligned to its element size");
  OpRequest op;
  op.session = weak_from_this();
  op.user_data = s.user_data;
  op.args = s;
  if (gpu) {
    op.cuda = std::move(cuda);
    op.cuda_offset = s.offset;
  } else {
    op.memory = arena;
    op.data = arena->data() + s.offset;
  }
  const auto timeout = s.timeout_ms ? std::chrono::milliseconds(s.timeout_ms) : daemon_.config.op_timeout;
  op.deadline = std::chrono::steady_clock::now() + timeout;
  g->second.group->submit(g->second.rank, std::move(op));
  return Status::ok();
}

void Session::complete(std::uint64_t user_data, const Status& status) {
  Status broken;
  {
    std::lock_guard lock(cq_mutex_);
    if (!ring_ok_) return;
    broken = ring_.push_completion(user_data, status);
    if (broken) {
      const std::uint64_t one = 1;
      // A hostile client can only make itself miss wake-ups by lying about spinning waiters.
      if (ring_.doorbell_needed() && ::write(completion_efd_.get(), &one, sizeof one) < 0) {
      }  // an eventfd write fails only on counter overflow, which a wake-up does not need
      return;
    }
    ring_ok_ = false;
  }
  asio::post(daemon_.io, [self = shared_from_this(), broken] { self->close(broken.message(), true); });
}

void Session::send_reply(std::vector<std::uint8_t> frame) {
  asio::post(daemon_.io, [self = shared_from_this(), frame = std::move(frame)]() mutable {
    if (self->closed_) return;
    if (self->write_queue_.size() >= kMaxQueuedReplies) {
      self->close("does not read its replies", true);
      return;
    }
    self->write_queue_.push_back(std::move(frame));
    if (!self->writing_) self->write_next();
  });
}

void Session::write_next() {
  if (write_queue_.empty() || closed_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(write_queue_.front()),
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      if (self->closed_) return;
                      if (ec) {
                        self->close("write failed: " + ec.message(), false);
                        return;
                      }
                      self->write_queue_.pop_front();
                      self->write_next();
                    });
}

void Session::close(const std::string& why, bool protocol_error) {
  if (closed_) return;
  closed_ = true;
  if (protocol_error) {
    spdlog::warn("{}: {}; disconnecting it", describe(), why);
    daemon_.record_error(describe() + ": " + why);
  } else {
    spdlog::info("{}: {}", describe(), why);
  }
  boost::system::error_code ignored;
  socket_.close(ignored);
  if (doorbell_) doorbell_->close(ignored);
  const std::string reason = protocol_error ? "disconnected by ternd: " + why : "its process " + why;
  while (!groups_.empty()) leave_group(groups_.begin()->first, reason);
  {
    std::lock_guard lock(cq_mutex_);
    ring_ok_ = false;
    completion_efd_.reset();
  }
  arenas_.clear();
  arena_bytes_ = 0;
  arena_count_ = 0;
  ring_memory_.reset();
  fds_.clear();
  daemon_.session_closed(id_);
}

}  // namespace tern::daemon
