#include "perf/control.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace tern::ibbench {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

int remaining_ms(Deadline deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 1000000 ? 1000000 : static_cast<int>(left);
}

// Waits for `events` on fd; kTimeout at the deadline.
Status wait_fd(int fd, short events, Deadline deadline, const std::string& what) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int ms = remaining_ms(deadline);
    const int n = ::poll(&p, 1, ms);
    if (n > 0) return Status::ok();
    if (n == 0) return Status(StatusCode::kTimeout, "timed out " + what);
    if (errno != EINTR) return internal_error("poll: " + errno_text(errno));
  }
}

std::string address_text(const sockaddr* sa) {
  char host[NI_MAXHOST] = {};
  char serv[NI_MAXSERV] = {};
  const socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) return "?";
  return sa->sa_family == AF_INET6 ? fmt::format("[{}]:{}", host, serv) : fmt::format("{}:{}", host, serv);
}

Status set_nonblocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return internal_error("fcntl: " + errno_text(errno));
  return Status::ok();
}

void set_nodelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

Deadline deadline_in(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<ControlChannel> ControlChannel::connect(const std::string& host, std::uint16_t port, Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0)
    return invalid_argument(fmt::format("cannot resolve '{}': {}", host, gai_strerror(rc)));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(list, &freeaddrinfo);

  std::string last_error = "no address";
  for (;;) {
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
      if (!fd.valid()) {
        last_error = "socket: " + errno_text(errno);
        continue;
      }
      TERN_CHECK(set_nonblocking(fd.get()));
      const std::string peer = address_text(ai->ai_addr);
      int rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS) {
        if (Status s = wait_fd(fd.get(), POLLOUT, deadline, "connecting to " + peer); !s) return s;
        int err = 0;
        socklen_t len = sizeof err;
        (void)getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        errno = err;
      }
      if (rc == 0) {
        set_nodelay(fd.get());
        return ControlChannel(std::move(fd), peer);
      }
      last_error = fmt::format("{}: {}", peer, errno_text(errno));
    }
    if (Clock::now() + std::chrono::milliseconds(100) >= deadline)
      return Status(StatusCode::kTimeout,
                    fmt::format("cannot connect to {} port {} ({}); is `ib-bench ... --server` running there?", host,
                                port, last_error));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Status ControlChannel::write_all(const void* data, std::size_t length, Deadline deadline) {
  const auto* p = static_cast<const char*>(data);
  while (length > 0) {
    const ssize_t n = ::send(fd_.get(), p, length, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      length -= static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      TERN_CHECK(wait_fd(fd_.get(), POLLOUT, deadline, "sending to " + peer_));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return Status(StatusCode::kPeerFailure,
                    fmt::format("control connection to {} failed: {}", peer_, errno_text(errno)));
    }
  }
  return Status::ok();
}

Status ControlChannel::read_all(void* data, std::size_t length, Deadline deadline) {
  auto* p = static_cast<char*>(data);
  while (length > 0) {
    const ssize_t n = ::recv(fd_.get(), p, length, 0);
    if (n > 0) {
      p += n;
      length -= static_cast<std::size_t>(n);
    } else if (n == 0) {
      return Status(StatusCode::kPeerFailure, fmt::format("{} closed the control connection", peer_));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      TERN_CHECK(wait_fd(fd_.get(), POLLIN, deadline, "waiting for " + peer_));
    } else if (errno != EINTR) {
      return Status(StatusCode::kPeerFailure,
                    fmt::format("control connection to {} failed: {}", peer_, errno_text(errno)));
    }
  }
  return Status::ok();
}

Status ControlChannel::send(const nlohmann::json& message, Deadline deadline) {
  const std::string text = message.dump();
  if (text.size() > kMaxControlMessage) return internal_error("control message too large");
  const auto n = static_cast<std::uint32_t>(text.size());
  const unsigned char header[4] = {static_cast<unsigned char>(n >> 24), static_cast<unsigned char>(n >> 16),
                                   static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
  TERN_CHECK(write_all(header, sizeof header, deadline));
  return write_all(text.data(), text.size(), deadline);
}

Result<nlohmann::json> ControlChannel::receive(Deadline deadline) {
  unsigned char header[4];
  TERN_CHECK(read_all(header, sizeof header, deadline));
  const std::uint32_t n = (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                          (std::uint32_t{header[2]} << 8) | std::uint32_t{header[3]};
  if (n > kMaxControlMessage)
    return corrupt_data(
        fmt::format("{} sent a {}-byte control frame (limit {}): not an ib-bench peer?", peer_, n, kMaxControlMessage));
  std::string text(n, '\0');
  TERN_CHECK(read_all(text.data(), n, deadline));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return corrupt_data(fmt::format("{} sent a control message that is not a JSON object", peer_));
  return j;
}

std::string ControlChannel::local_address() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[NI_MAXHOST] = {};
  if (getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0)
    return "?";
  return host;
}

Result<ControlListener> ControlListener::listen(const std::string& bind_address, std::uint16_t port) {
  const bool v6 = bind_address.find(':') != std::string::npos;
  Fd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return internal_error("socket: " + errno_text(errno));
  int one = 1;
  (void)setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, bind_address.c_str(), &a->sin6_addr) != 1)
      return invalid_argument("bad bind address '" + bind_address + "'");
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    const std::string addr = bind_address.empty() ? "0.0.0.0" : bind_address;
    if (inet_pton(AF_INET, addr.c_str(), &a->sin_addr) != 1)
      return invalid_argument("bad bind address '" + bind_address + "'");
    len = sizeof *a;
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return unavailable(fmt::format("cannot listen on port {}: {}", port, errno_text(errno)));
  if (::listen(fd.get(), 16) != 0) return internal_error("listen: " + errno_text(errno));
  TERN_CHECK(set_nonblocking(fd.get()));
  socklen_t got = sizeof ss;
  (void)getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &got);
  const std::uint16_t actual = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                  : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ControlListener(std::move(fd), actual);
}

Result<ControlChannel> ControlListener::accept(Deadline deadline) {
  for (;;) {
    TERN_CHECK(wait_fd(fd_.get(), POLLIN, deadline, fmt::format("waiting for a client on port {}", port_)));
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    Fd fd(::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd.valid()) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) continue;
      return internal_error("accept: " + errno_text(errno));
    }
    set_nodelay(fd.get());
    return ControlChannel(std::move(fd), address_text(reinterpret_cast<sockaddr*>(&ss)));
  }
}

Status peer_error(const nlohmann::json& message, const std::string& peer) {
  if (!message.contains("error")) return Status::ok();
  const std::string text = message["error"].is_string() ? message["error"].get<std::string>() : message["error"].dump();
  return Status(StatusCode::kPeerFailure, fmt::format("{}: {}", peer, text));
}

}  // namespace tern::ibbench
