#include "client.h"

#include "cuda_registration.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tern::client {

namespace protocol = daemon::protocol;
namespace ring = daemon::ring;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint32_t kRingCapacity = 1024;
constexpr auto kControlTimeout = std::chrono::milliseconds(10'000);
// Waiters spin this long re-checking the ring before they sleep: a small allreduce completes in
// microseconds, and a sleep/wake-up pair costs more than that.
constexpr auto kSpin = std::chrono::microseconds(50);

std::string errno_text() { return std::strerror(errno); }

Status unavailable_from_errno(const std::string& what) { return unavailable(what + ": " + errno_text()); }

std::size_t page_round(std::size_t bytes) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

// Sends all of `bytes`, the descriptors with the first byte.
Status send_frame(int sock, const std::vector<std::uint8_t>& bytes, const int* fds, std::uint16_t nfds) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    iovec iov{const_cast<std::uint8_t*>(bytes.data()) + sent, bytes.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * protocol::kMaxFdsPerFrame)] = {};
    if (sent == 0 && nfds > 0) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
      std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    const ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return unavailable_from_errno("sending to ternd failed (ternd went away?)");
    }
    sent += static_cast<std::size_t>(n);
  }
  return Status::ok();
}

Status recv_exact(int sock, std::uint8_t* out, std::size_t n, Clock::time_point deadline) {
  std::size_t got = 0;
  while (got < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Status(StatusCode::kTimeout, "ternd did not answer in time");
    pollfd p{sock, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno != EINTR) return unavailable_from_errno("poll on the ternd socket");
    if (r <= 0) continue;
    const ssize_t k = ::recv(sock, out + got, n - got, 0);
    if (k == 0) return unavailable("ternd closed the connection (stopped or restarted); reconnect with tern_connect");
    if (k < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return unavailable_from_errno("receiving from ternd failed");
    }
    got += static_cast<std::size_t>(k);
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Client>> Client::connect(const std::string& socket_path) {
  std::unique_ptr<Client> c(new Client());
  c->socket_path_ = socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path)
    return invalid_argument("socket path " + socket_path + " is too long");
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  c->socket_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->socket_ < 0) return unavailable_from_errno("socket()");
  if (::connect(c->socket_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    return unavailable("no ternd at " + socket_path + ": " + errno_text());

  // The rings: a sealed memfd and two doorbells, handed to the daemon in hello.
  c->ring_bytes_ = page_round(ring::ring_bytes(kRingCapacity));
  const int ring_fd = ::memfd_create("tern-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (ring_fd < 0) return unavailable_from_errno("memfd_create");
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } ring_closer{ring_fd};
  if (::ftruncate(ring_fd, static_cast<off_t>(ring::ring_bytes(kRingCapacity))) != 0 ||
      ::fcntl(ring_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return unavailable_from_errno("preparing the ring memfd");
  c->ring_base_ = ::mmap(nullptr, ring::ring_bytes(kRingCapacity), PROT_READ | PROT_WRITE, MAP_SHARED, ring_fd, 0);
  if (c->ring_base_ == MAP_FAILED) {
    c->ring_base_ = nullptr;
    return unavailable_from_errno("mmap of the ring");
  }
  c->ring_bytes_ = ring::ring_bytes(kRingCapacity);
  TERN_ASSIGN_OR_RETURN(c->ring_, ring::RingView::initialize(c->ring_base_, c->ring_bytes_, kRingCapacity));
  c->submit_efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  c->complete_efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  c->wake_efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (c->submit_efd_ < 0 || c->complete_efd_ < 0 || c->wake_efd_ < 0) return unavailable_from_errno("eventfd");

  protocol::Hello hello;
  hello.abi_version = TERN_ABI_VERSION;
  hello.ring_capacity = kRingCapacity;
  hello.ring_bytes = c->ring_bytes_;
  hello.pid = static_cast<std::uint32_t>(::getpid());
  const int fds[3] = {ring_fd, c->submit_efd_, c->complete_efd_};
  TERN_ASSIGN_OR_RETURN(protocol::Reply reply, c->call(hello, fds, 3, kControlTimeout));
  c->host_ = reply.text;
  c->completion_thread_ = std::thread([p = c.get()] { p->completion_loop(); });
  return c;
}

Client::~Client() {
  stopping_ = true;
  if (wake_efd_ >= 0) {
    const std::uint64_t one = 1;
    (void)!::write(wake_efd_, &one, sizeof one);
  }
  if (completion_thread_.joinable()) completion_thread_.join();
  fail_all(unavailable("the client disconnected (tern_disconnect) before the request completed"));
  if (socket_ >= 0) ::close(socket_);  // the daemon releases everything of this connection
  for (auto& [base, a] : arenas_) unmap_arena(a);
  if (ring_base_) ::munmap(ring_base_, ring_bytes_);
  for (int fd : {submit_efd_, complete_efd_, wake_efd_})
    if (fd >= 0) ::close(fd);
}

Result<protocol::Reply> Client::call(const protocol::Request& request, const int* fds, std::uint16_t nfds,
                                     std::chrono::milliseconds timeout) {
  std::lock_guard lock(control_mutex_);
  if (dead_) {
    std::lock_guard l(mutex_);
    return dead_reason_;
  }
  const auto type = protocol::request_type(request);
  TERN_CHECK(send_frame(socket_, protocol::encode_request(request, nfds), fds, nfds));
  const auto deadline = Clock::now() + timeout;
  std::uint8_t header_bytes[protocol::kHeaderBytes];
  TERN_CHECK(recv_exact(socket_, header_bytes, sizeof header_bytes, deadline));
  TERN_ASSIGN_OR_RETURN(protocol::FrameHeader header,
                        protocol::decode_header(header_bytes, protocol::kMaxPayloadBytes));
  std::vector<std::uint8_t> payload(header.payload_bytes);
  TERN_CHECK(recv_exact(socket_, payload.data(), payload.size(), deadline));
  TERN_ASSIGN_OR_RETURN(protocol::Reply reply, protocol::decode_reply(type, header, payload));
  if (reply.code != StatusCode::kOk) return Status(reply.code, reply.message);
  return reply;
}

Result<std::string> Client::unique_id() {
  TERN_ASSIGN_OR_RETURN(auto reply, call(protocol::GetUniqueId{}, nullptr, 0, kControlTimeout));
  return reply.text;
}

Result<std::uint32_t> Client::join(const protocol::GroupJoin& args, std::chrono::milliseconds timeout) {
  // The daemon answers when the whole group formed or its own deadline passed; allow a margin.
  TERN_ASSIGN_OR_RETURN(auto reply, call(args, nullptr, 0, timeout + std::chrono::seconds(5)));
  return reply.u32;
}

Status Client::leave(std::uint32_t handle) {
  return call(protocol::GroupLeave{handle}, nullptr, 0, kControlTimeout).status();
}

Result<Arena> Client::make_arena(std::size_t bytes) {
  const std::size_t size = page_round(bytes);
  const int fd = ::memfd_create("tern-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return unavailable_from_errno("memfd_create for a " + std::to_string(bytes) + "-byte arena");
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
    return out_of_range("cannot size a shared arena of " + std::to_string(size) + " bytes: " + errno_text());
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return unavailable_from_errno("sealing the arena memfd");
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return out_of_range("mmap of a " + std::to_string(size) + "-byte arena: " + errno_text());
  auto reply = call(protocol::AllocArena{size}, &fd, 1, kControlTimeout);
  if (!reply) {
    ::munmap(base, size);
    return reply.status();
  }
  Arena a;
  a.id = reply->u32;
  a.base = base;
  a.bytes = size;
  return a;
}

void Client::unmap_arena(const Arena& a) { ::munmap(a.base, a.bytes); }

Result<void*> Client::alloc(std::size_t bytes) {
  if (bytes == 0) return invalid_argument("tern_alloc of 0 bytes");
  TERN_ASSIGN_OR_RETURN(Arena a, make_arena(bytes));
  std::lock_guard lock(mutex_);
  arenas_.emplace(reinterpret_cast<std::uintptr_t>(a.base), a);
  return a.base;
}

Status Client::free(void* ptr) {
  Arena a;
  {
    std::lock_guard lock(mutex_);
    auto it = arenas_.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == arenas_.end() || it->second.user != nullptr)
      return invalid_argument("tern_free: " + std::to_string(reinterpret_cast<std::uintptr_t>(ptr)) +
                              " was not returned by tern_alloc on this client");
    a = it->second;
    arenas_.erase(it);
  }
  Status s = call(protocol::FreeArena{a.id}, nullptr, 0, kControlTimeout).status();
  unmap_arena(a);
  return s;
}

Status Client::register_memory(void* ptr, std::size_t bytes) {
  if (ptr == nullptr || bytes == 0) return invalid_argument("tern_register: null pointer or 0 bytes");
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  {
    std::lock_guard lock(mutex_);
    for (const auto& [base, a] : arenas_) {
      if (a.user == nullptr && p >= base && p + bytes <= base + a.bytes) return Status::ok();  // tern_alloc memory
      const auto ub = reinterpret_cast<std::uintptr_t>(a.user);
      if (a.user != nullptr && p < ub + a.user_bytes && ub < p + bytes)
        return invalid_argument("tern_register: [" + std::to_string(p) + ", +" + std::to_string(bytes) +
                                ") overlaps an earlier registration");
    }
  }
  TERN_ASSIGN_OR_RETURN(auto device, cuda_allocation_of(ptr));
  if (device) {
    if (p < device->base || p + bytes > device->base + device->bytes)
      return invalid_argument("tern_register: the range exceeds its CUDA allocation");
    {
      std::lock_guard lock(mutex_);
      for (const auto& [up, region] : cuda_regions_)
        if (p < up + region.bytes && up < p + bytes)
          return invalid_argument("tern_register: the range overlaps an earlier GPU registration");
    }
    protocol::RegisterCuda r;
    r.ipc_handle = device->handle;
    r.bytes = device->bytes;
    r.device = device->device;
    TERN_ASSIGN_OR_RETURN(auto reply, call(r, nullptr, 0, kControlTimeout));
    std::lock_guard lock(mutex_);
    cuda_regions_[p] = CudaRegion{bytes, device->base, reply.u32};
    return Status::ok();
  }
  // Host memory: staged through an arena of its own (the daemon cannot read our address space).
  TERN_ASSIGN_OR_RETURN(Arena a, make_arena(bytes));
  a.user = ptr;
  a.user_bytes = bytes;
  std::lock_guard lock(mutex_);
  arenas_.emplace(reinterpret_cast<std::uintptr_t>(a.base), a);
  registered_[p] = reinterpret_cast<std::uintptr_t>(a.base);
  return Status::ok();
}

Status Client::deregister(void* ptr) {
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  Arena a;
  {
    std::unique_lock lock(mutex_);
    if (auto c = cuda_regions_.find(p); c != cuda_regions_.end()) {
      const std::uint32_t id = c->second.id;
      cuda_regions_.erase(c);
      lock.unlock();
      return call(protocol::DeregisterCuda{id}, nullptr, 0, kControlTimeout).status();
    }
    auto r = registered_.find(p);
    if (r == registered_.end()) {
      for (const auto& [base, arena] : arenas_)
        if (arena.user == nullptr && p >= base && p < base + arena.bytes) return Status::ok();  // tern_alloc memory
      return invalid_argument("tern_deregister: the pointer was not registered");
    }
    auto it = arenas_.find(r->second);
    a = it->second;
    arenas_.erase(it);
    registered_.erase(r);
  }
  Status s = call(protocol::FreeArena{a.id}, nullptr, 0, kControlTimeout).status();
  unmap_arena(a);
  return s;
}

Result<std::shared_ptr<RequestState>> Client::submit(std::uint32_t group_handle, const tern_allreduce_args_t& args) {
  if (args.dtype < TERN_FLOAT32 || args.dtype > TERN_BFLOAT16)
    return invalid_argument("allreduce: unknown dtype " + std::to_string(static_cast<int>(args.dtype)));
  if (args.op < TERN_SUM || args.op > TERN_MEAN)
    return invalid_argument("allreduce: unknown op " + std::to_string(static_cast<int>(args.op)));
  if (args.scatter_codec < TERN_CODEC_FP32 || args.scatter_codec > TERN_CODEC_SIGN_EF ||
      args.gather_codec < TERN_CODEC_FP32 || args.gather_codec > TERN_CODEC_SIGN_EF)
    return invalid_argument("allreduce: unknown codec");
  if (args.buffer == nullptr || args.count == 0) return invalid_argument("allreduce: null buffer or count 0");
  const std::size_t elem = args.dtype == TERN_FLOAT32 ? 4 : 2;
  if (args.count > SIZE_MAX / elem) return out_of_range("allreduce: count overflows");
  const std::size_t bytes = args.count * elem;
  const auto p = reinterpret_cast<std::uintptr_t>(args.buffer);

  auto request = std::make_shared<RequestState>();
  ring::Submission s{};
  {
    std::lock_guard lock(mutex_);
    if (dead_) return dead_reason_;
    const Arena* arena = nullptr;
    std::uint64_t offset = 0;
    s.memory_kind = static_cast<std::uint8_t>(ring::MemoryKind::kHostArena);
    if (auto c = cuda_regions_.upper_bound(p); c != cuda_regions_.begin()) {
      --c;
      if (p >= c->first && p + bytes <= c->first + c->second.bytes) {
        s.memory_kind = static_cast<std::uint8_t>(ring::MemoryKind::kCuda);
        s.memory_id = c->second.id;
        offset = p - c->second.alloc_base;
      }
    }
    if (s.memory_kind != static_cast<std::uint8_t>(ring::MemoryKind::kCuda)) {
      if (auto r = registered_.upper_bound(p); r != registered_.begin()) {
        --r;
        const Arena& a = arenas_.at(r->second);
        if (p >= r->first && p + bytes <= r->first + a.user_bytes) {
          arena = &a;
          offset = p - r->first;
          std::memcpy(static_cast<std::uint8_t*>(a.base) + offset, args.buffer, bytes);  // stage in
          request->copy_back_to = args.buffer;
          request->copy_back_from = static_cast<std::uint8_t*>(a.base) + offset;
          request->copy_back_bytes = bytes;
        }
      }
      if (!arena) {
        if (auto it = arenas_.upper_bound(p); it != arenas_.begin()) {
          --it;
          if (it->second.user == nullptr && p + bytes <= it->first + it->second.bytes) {
            arena = &it->second;
            offset = p - it->first;
          }
        }
      }
      if (!arena)
        return invalid_argument("allreduce: the buffer (" + std::to_string(bytes) +
                                " bytes) is not inside memory from tern_alloc or tern_register");
      s.memory_id = arena->id;
    }
    if (pending_.size() >= kRingCapacity)
      return out_of_range("allreduce: " + std::to_string(kRingCapacity) + " requests in flight on this client already");
    s.user_data = next_user_data_++;
    s.group_handle = group_handle;
    s.offset = offset;
    pending_.emplace(s.user_data, request);
  }
  s.count = args.count;
  s.dtype = static_cast<std::uint8_t>(args.dtype);
  s.op = static_cast<std::uint8_t>(args.op);
  s.scatter_codec = static_cast<std::uint8_t>(args.scatter_codec);
  s.gather_codec = static_cast<std::uint8_t>(args.gather_codec);
  s.timeout_ms = args.timeout_ms;
  s.tensor_key = args.tensor_key;
  const auto timeout = std::chrono::milliseconds(args.timeout_ms ? args.timeout_ms : 30'000);
  // The daemon fails the request at its deadline; the client's own deadline adds a margin for a
  // daemon that cannot answer at all.
  request->deadline = Clock::now() + timeout + std::chrono::seconds(5);
  {
    std::lock_guard lock(submit_mutex_);
    ring_.push_submission(s);
  }
  const std::uint64_t one = 1;
  (void)!::write(submit_efd_, &one, sizeof one);
  return request;
}

void Client::finish(const std::shared_ptr<RequestState>& r, Status status) {
  if (status.is_ok() && r->copy_back_to) std::memcpy(r->copy_back_to, r->copy_back_from, r->copy_back_bytes);
  r->status = std::move(status);
  {
    std::lock_guard lock(mutex_);
    r->done.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

std::size_t Client::drain(bool must) {
  // Spinning waiters skip the drain when someone else is draining. The completion thread must not:
  // it consumed the doorbell, and an entry published after the other drainer read the tail would
  // otherwise stay unseen.
  std::unique_lock drain_lock(drain_mutex_, std::defer_lock);
  if (must) {
    drain_lock.lock();
  } else if (!drain_lock.try_lock()) {
    return 0;
  }
  return ring_.drain_completions([this](const ring::Completion& c) {
    std::shared_ptr<RequestState> r;
    {
      std::lock_guard lock(mutex_);
      auto it = pending_.find(c.user_data);
      if (it == pending_.end()) return;  // not ours (cannot happen with a correct daemon)
      r = std::move(it->second);
      pending_.erase(it);
    }
    const auto code = c.status <= static_cast<std::uint32_t>(StatusCode::kInternal) ? static_cast<StatusCode>(c.status)
                                                                                   : StatusCode::kInternal;
    finish(r, code == StatusCode::kOk ? Status::ok() : Status(code, std::string(c.message, c.message_bytes)));
  });
}

void Client::fail_all(const Status& status) {
  std::unordered_map<std::uint64_t, std::shared_ptr<RequestState>> failed;
  {
    std::lock_guard lock(mutex_);
    if (!dead_) {
      dead_reason_ = status;
      dead_ = true;
    }
    failed.swap(pending_);
  }
  for (auto& [id, r] : failed) finish(r, status);
}

void Client::completion_loop() {
  while (!stopping_) {
    pollfd p[3] = {{complete_efd_, POLLIN, 0}, {wake_efd_, POLLIN, 0}, {socket_, POLLRDHUP, 0}};
    const int r = ::poll(p, 3, -1);
    if (r < 0 && errno != EINTR) break;
    std::uint64_t v;
    if (p[0].revents & POLLIN) (void)!::read(complete_efd_, &v, sizeof v);
    drain(true);
    if (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
      drain(true);  // completions the daemon wrote before it closed
      fail_all(unavailable("ternd at " + socket_path_ +
                           " closed the connection (stopped or restarted); reconnect with tern_connect"));
      return;
    }
  }
}

bool Client::wait(const std::shared_ptr<RequestState>& request, Clock::time_point deadline) {
  if (request->done.load(std::memory_order_acquire)) return true;
  drain(false);  // tern_test: completions a spinning waiter did not reap yet came without a doorbell
  if (request->done.load(std::memory_order_acquire)) return true;
  const auto spin_end = std::min(deadline, Clock::now() + kSpin);
  if (Clock::now() < spin_end) {
    ring_.start_spinning();  // the daemon skips the doorbell meanwhile
    while (Clock::now() < spin_end && !request->done.load(std::memory_order_acquire)) {
      drain(false);
      if (request->done.load(std::memory_order_acquire)) break;
      std::this_thread::yield();  // let the daemon run on a busy machine
    }
    ring_.stop_spinning();
    drain(true);  // a completion published while the daemon saw us spinning came without a doorbell
  }
  if (request->done.load(std::memory_order_acquire)) return true;
  std::unique_lock lock(mutex_);
  return cv_.wait_until(lock, deadline, [&] { return request->done.load(std::memory_order_acquire); });
}

Result<std::string> Client::daemon_status() {
  TERN_ASSIGN_OR_RETURN(auto reply, call(protocol::StatusRequest{}, nullptr, 0, kControlTimeout));
  return reply.text;
}

}  // namespace tern::client
