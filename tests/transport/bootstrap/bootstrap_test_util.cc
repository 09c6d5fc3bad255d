#include "bootstrap_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

extern char** environ;

namespace tern::transport::testing {

BootstrapOptions fast_options() {
  BootstrapOptions o;
  o.heartbeat_interval = 50ms;
  o.heartbeat_timeout = 1s;
  o.formation_timeout = 20s;
  o.handshake_timeout = 2s;
  o.connect_timeout = 2s;
  o.connect_retry_interval = 20ms;
  o.collective_timeout = 20s;
  return o;
}

BootstrapOptions detection_options() {
  BootstrapOptions o = fast_options();
  o.heartbeat_timeout = 300ms;
  return o;
}

UniqueId local_id() {
  auto id = UniqueId::generate("127.0.0.1", 0);
  EXPECT_TRUE(id.is_ok()) << id.status().to_string();
  return *id;
}

PeerFailureFn FailureLog::callback() {
  return [this](int rank, const Status& why) {
    {
      std::lock_guard lock(mu_);
      events_.emplace_back(rank, why);
    }
    cv_.notify_all();
  };
}

std::optional<Status> FailureLog::wait_for(int rank, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::optional<Status> found;
  cv_.wait_for(lock, timeout, [&] {
    for (const auto& [r, s] : events_)
      if (r == rank) {
        found = s;
        return true;
      }
    return false;
  });
  return found;
}

std::vector<std::pair<int, Status>> FailureLog::events() const {
  std::lock_guard lock(mu_);
  return events_;
}

std::vector<Result<std::unique_ptr<Bootstrap>>> join_concurrently(const UniqueId& id, std::vector<JoinOptions> joins,
                                                                  const BootstrapOptions& options) {
  std::vector<std::optional<Result<std::unique_ptr<Bootstrap>>>> slots(joins.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < joins.size(); ++i)
    threads.emplace_back([&, i] { slots[i].emplace(Bootstrap::join(id, std::move(joins[i]), options)); });
  for (auto& t : threads) t.join();
  std::vector<Result<std::unique_ptr<Bootstrap>>> out;
  for (auto& s : slots) out.push_back(std::move(*s));
  return out;
}

Group form_group(int n, const BootstrapOptions& options, FailureLog* log) {
  Group g;
  auto server = BootstrapServer::start(local_id(), n, options);
  EXPECT_TRUE(server.is_ok()) << server.status().to_string();
  if (!server.is_ok()) return g;
  g.server = std::move(*server);
  std::vector<JoinOptions> joins(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const std::string p = "payload-" + std::to_string(i);
    joins[static_cast<std::size_t>(i)].payload.assign(p.begin(), p.end());
    joins[static_cast<std::size_t>(i)].host_name = "host" + std::to_string(i);
    if (log != nullptr) joins[static_cast<std::size_t>(i)].on_peer_failure = log->callback();
  }
  auto results = join_concurrently(g.server->id(), std::move(joins), options);
  for (auto& r : results) {
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (r.is_ok()) g.members.push_back(std::move(*r));
  }
  std::sort(g.members.begin(), g.members.end(), [](const auto& a, const auto& b) { return a->rank() < b->rank(); });
  return g;
}

int thread_count() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

// --- RawClient ---------------------------------------------------------------------------------

std::unique_ptr<RawClient> RawClient::connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<RawClient>(new RawClient(fd));
}

RawClient::~RawClient() { ::close(fd_); }

bool RawClient::send_all(const std::vector<std::uint8_t>& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool RawClient::read_exact(std::uint8_t* out, std::size_t n, Clock::time_point deadline) {
  std::size_t got = 0;
  while (got < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    const ssize_t r = ::recv(fd_, out + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

std::optional<std::vector<std::uint8_t>> RawClient::read_frame(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<std::uint8_t> frame(5);
  if (!read_exact(frame.data(), 5, deadline)) return std::nullopt;
  const std::uint32_t len = static_cast<std::uint32_t>(frame[1]) | (static_cast<std::uint32_t>(frame[2]) << 8) |
                            (static_cast<std::uint32_t>(frame[3]) << 16) | (static_cast<std::uint32_t>(frame[4]) << 24);
  if (len > (1u << 20)) return std::nullopt;
  frame.resize(5 + len);
  if (!read_exact(frame.data() + 5, len, deadline)) return std::nullopt;
  return frame;
}

bool RawClient::closed_within(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::uint8_t sink[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    const ssize_t r = ::recv(fd_, sink, sizeof sink, 0);
    if (r <= 0) return true;  // EOF or reset
  }
}

// --- Child -------------------------------------------------------------------------------------

const char* helper_path() { return TERN_BOOTSTRAP_TEST_MEMBER; }

std::unique_ptr<Child> Child::spawn(const std::vector<std::string>& args) {
  int in[2];
  int out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return nullptr;
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return nullptr;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  std::vector<std::string> argv_storage;
  argv_storage.push_back(helper_path());
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, helper_path(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    ADD_FAILURE() << "posix_spawn " << helper_path() << ": " << std::strerror(rc);
    return nullptr;
  }
  return std::unique_ptr<Child>(new Child(pid, in[1], out[0]));
}

Child::~Child() {
  if (in_ >= 0) ::close(in_);
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  ::close(out_);
}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
    char chunk[512];
    const ssize_t r = ::read(out_, chunk, sizeof chunk);
    if (r <= 0) return std::nullopt;
    buffer_.append(chunk, static_cast<std::size_t>(r));
  }
}

void Child::signal(int sig) { ::kill(pid_, sig); }

int Child::finish() {
  if (in_ >= 0) {
    ::close(in_);
    in_ = -1;
  }
  int status = 0;
  ::waitpid(pid_, &status, 0);
  reaped_ = true;
  return status;
}

}  // namespace tern::transport::testing
