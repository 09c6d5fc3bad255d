#include "transport/ucx/ucx_test_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <thread>

namespace tern::transport::ucx_test {

std::string fabric_name(Fabric fabric) { return fabric == Fabric::kTcp ? "Tcp" : "Default"; }

UcxOptions options_for(Fabric fabric, std::vector<UcxSetting> extra) {
  UcxOptions options;
  if (fabric == Fabric::kTcp) options.config.push_back({"TLS", "tcp,self"});
  for (auto& s : extra) options.config.push_back(std::move(s));
  return options;
}

std::vector<std::string> peer_names(int n) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "unknown");
  std::vector<std::string> names;
  for (int r = 0; r < n; ++r) names.push_back("rank " + std::to_string(r) + " (host " + host + ")");
  return names;
}

void Transports::clear() {
  std::vector<std::thread> threads;
  for (auto& rank : ranks_) {
    if (rank) threads.emplace_back([r = std::move(rank)]() mutable { r.reset(); });
  }
  for (auto& t : threads) t.join();
  ranks_.clear();
}

Result<Transports> make_ranks(int n, const UcxOptions& options) {
  std::vector<UcxLocalWorker> locals;
  std::vector<std::vector<std::byte>> addresses;
  for (int r = 0; r < n; ++r) {
    TERN_ASSIGN_OR_RETURN(UcxLocalWorker local, UcxLocalWorker::create(options));
    addresses.push_back(local.address());
    locals.push_back(std::move(local));
  }
  std::vector<std::unique_ptr<UcxTransport>> out;
  for (int r = 0; r < n; ++r) {
    TERN_ASSIGN_OR_RETURN(auto t, UcxTransport::create(std::move(locals[static_cast<std::size_t>(r)]), r,
                                                       addresses, peer_names(n)));
    out.push_back(std::move(t));
  }
  return Transports(std::move(out));
}

bool drive_until(const Transports& ranks, const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    for (const auto& t : ranks) {
      if (t && !t->progress(0ms).is_ok()) return false;
    }
  }
  return true;
}

void pump(const Transports& ranks, std::chrono::milliseconds duration) {
  (void)drive_until(ranks, [] { return false; }, duration);
}

bool drive_until(Transport& transport, const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (!transport.progress(10ms).is_ok()) return false;
  }
  return true;
}

namespace {
std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
std::byte pattern_byte(std::uint64_t seed, std::size_t i) {
  return static_cast<std::byte>(mix(seed ^ (i / 8)) >> (8 * (i % 8)));
}
}  // namespace

std::vector<std::byte> pattern(std::size_t size, std::uint64_t seed) {
  std::vector<std::byte> out(size);
  for (std::size_t word = 0; word * 8 < size; ++word) {
    const std::uint64_t v = mix(seed ^ word);
    const std::size_t n = std::min<std::size_t>(8, size - word * 8);
    std::memcpy(out.data() + word * 8, &v, n);
  }
  return out;
}

std::optional<std::size_t> pattern_mismatch(std::span<const std::byte> data, std::uint64_t seed) {
  for (std::size_t word = 0; word * 8 < data.size(); ++word) {
    const std::uint64_t v = mix(seed ^ word);
    const std::size_t n = std::min<std::size_t>(8, data.size() - word * 8);
    if (std::memcmp(data.data() + word * 8, &v, n) != 0) {
      for (std::size_t i = word * 8; i < word * 8 + n; ++i) {
        if (data[i] != pattern_byte(seed, i)) return i;
      }
    }
  }
  return std::nullopt;
}

Channel::Channel(Channel&& other) noexcept : read_fd_(other.read_fd_), write_fd_(other.write_fd_) {
  other.read_fd_ = -1;
  other.write_fd_ = -1;
}

Channel::~Channel() {
  if (read_fd_ >= 0) ::close(read_fd_);
  if (write_fd_ >= 0) ::close(write_fd_);
}

namespace {
bool write_all(int fd, const std::byte* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}
}  // namespace

bool Channel::write(std::span<const std::byte> blob) {
  const auto size = static_cast<std::uint32_t>(blob.size());
  return write_all(write_fd_, reinterpret_cast<const std::byte*>(&size), sizeof size) &&
         write_all(write_fd_, blob.data(), blob.size());
}

namespace {
bool read_exact(int fd, std::byte* out, std::size_t size, std::chrono::steady_clock::time_point deadline) {
  std::size_t done = 0;
  while (done < size) {
    const auto left = std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                  deadline - std::chrono::steady_clock::now()));
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t n = ::read(fd, out + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}
}  // namespace

std::optional<std::vector<std::byte>> Channel::read(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::uint32_t size = 0;
  if (!read_exact(read_fd_, reinterpret_cast<std::byte*>(&size), sizeof size, deadline)) return std::nullopt;
  std::vector<std::byte> blob(size);
  if (!read_exact(read_fd_, blob.data(), size, deadline)) return std::nullopt;
  return blob;
}

Child fork_child(const std::function<int(Channel&)>& body) {
  int to_child[2];
  int from_child[2];
  if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) {
    std::perror("pipe");
    std::abort();
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::abort();
  }
  if (pid == 0) {
    ::close(to_child[1]);
    ::close(from_child[0]);
    int code = 1;
    {
      Channel channel(to_child[0], from_child[1]);
      code = body(channel);
    }
    std::fflush(stderr);
    ::_exit(code);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  return Child{pid, Channel(from_child[0], to_child[1])};
}

int wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return -WTERMSIG(status);
      return -1000;
    }
    if (r < 0) return -1001;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1002;
    }
    std::this_thread::sleep_for(5ms);
  }
}

std::optional<std::vector<std::vector<std::byte>>> exchange_as_child(Channel& parent, std::span<const std::byte> mine) {
  if (!parent.write(mine)) return std::nullopt;
  auto count = parent.read();
  if (!count || count->size() != sizeof(std::uint32_t)) return std::nullopt;
  std::uint32_t n = 0;
  std::memcpy(&n, count->data(), sizeof n);
  std::vector<std::vector<std::byte>> all;
  for (std::uint32_t r = 0; r < n; ++r) {
    auto blob = parent.read();
    if (!blob) return std::nullopt;
    all.push_back(std::move(*blob));
  }
  return all;
}

std::optional<std::vector<std::vector<std::byte>>> exchange_as_parent(std::vector<Child>& children,
                                                                      std::span<const std::byte> mine) {
  std::vector<std::vector<std::byte>> all{std::vector<std::byte>(mine.begin(), mine.end())};
  for (Child& c : children) {
    auto blob = c.channel.read();
    if (!blob) return std::nullopt;
    all.push_back(std::move(*blob));
  }
  const auto n = static_cast<std::uint32_t>(all.size());
  std::byte count[sizeof n];
  std::memcpy(count, &n, sizeof n);
  for (Child& c : children) {
    if (!c.channel.write(count)) return std::nullopt;
    for (const auto& a : all) {
      if (!c.channel.write(a)) return std::nullopt;
    }
  }
  return all;
}

bool check(bool condition, const std::string& what) {
  if (!condition) std::fprintf(stderr, "[child %d] check failed: %s\n", static_cast<int>(::getpid()), what.c_str());
  return condition;
}

}  // namespace tern::transport::ucx_test
