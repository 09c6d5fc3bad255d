// Helpers for the UCX transport tests: ranks in one process, forked ranks talking through pipes,
// payload patterns, bounded waits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tern/transport/ucx.h"

namespace tern::transport::ucx_test {

using namespace std::chrono_literals;

/// Which UCX transports a test runs over.
enum class Fabric : std::uint8_t {
  kDefault,  ///< UCX's own choice (shared memory between processes of this host)
  kTcp,      ///< UCX_TLS=tcp,self: TCP over loopback
};
std::string fabric_name(Fabric fabric);

/// Options for `fabric` (set through UcxOptions::config, never setenv), plus `extra` settings.
UcxOptions options_for(Fabric fabric, std::vector<UcxSetting> extra = {});

/// "rank r (host <hostname>)" for r in [0, n).
std::vector<std::string> peer_names(int n);

/// The ranks of one in-process group. Destroys them concurrently, each on its own thread, as
/// separate processes would: a graceful (flushing) close needs the peer to keep progressing, so
/// destroying them one after another would make each wait out its close timeout.
class Transports {
 public:
  Transports() = default;
  explicit Transports(std::vector<std::unique_ptr<UcxTransport>> ranks) : ranks_(std::move(ranks)) {}
  Transports(Transports&&) = default;
  Transports& operator=(Transports&&) = delete;
  ~Transports() { clear(); }

  std::size_t size() const { return ranks_.size(); }
  std::unique_ptr<UcxTransport>& operator[](std::size_t i) { return ranks_[i]; }
  auto begin() const { return ranks_.begin(); }
  auto end() const { return ranks_.end(); }
  /// Destroys every rank, concurrently.
  void clear();

 private:
  std::vector<std::unique_ptr<UcxTransport>> ranks_;
};

/// `n` ranks in this process, each with its own context and worker, addresses swapped in memory.
Result<Transports> make_ranks(int n, const UcxOptions& options);

/// Calls progress(0) on every transport, round robin, until `done()` or `timeout`; returns done().
bool drive_until(const Transports& ranks, const std::function<bool()>& done, std::chrono::milliseconds timeout = 20s);
/// Progresses every transport, round robin, for `duration`.
void pump(const Transports& ranks, std::chrono::milliseconds duration);
/// Same for one transport, with blocking progress(10ms) calls.
bool drive_until(Transport& transport, const std::function<bool()>& done, std::chrono::milliseconds timeout = 20s);

/// Fills/checks a deterministic payload (a function of seed and offset).
std::vector<std::byte> pattern(std::size_t size, std::uint64_t seed);
/// Index of the first byte that differs from pattern(size, seed), or nullopt.
std::optional<std::size_t> pattern_mismatch(std::span<const std::byte> data, std::uint64_t seed);

/// Counts completions of one operation.
struct Outcome {
  int calls = 0;
  Completion completion;
  CompletionFn fn() {
    return [this](const Completion& c) {
      ++calls;
      completion = c;
    };
  }
};

// --- forked ranks ---------------------------------------------------------------------------

/// One end of a pair of pipes, carrying length-prefixed blobs.
class Channel {
 public:
  Channel(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}
  Channel(Channel&& other) noexcept;
  Channel& operator=(Channel&&) = delete;
  Channel(const Channel&) = delete;
  ~Channel();

  bool write(std::span<const std::byte> blob);
  /// nullopt on EOF, error or timeout.
  std::optional<std::vector<std::byte>> read(std::chrono::milliseconds timeout = 20s);

 private:
  int read_fd_;
  int write_fd_;
};

struct Child {
  pid_t pid = -1;
  Channel channel;
};

/// Forks a child that runs `body(channel)` and exits with its return value (never returns into
/// the test). Call before this process creates any UCX object (the child must not inherit one).
Child fork_child(const std::function<int(Channel&)>& body);

/// Waits for the child to exit (killing it after `timeout`); its exit code, or -signal.
int wait_child(pid_t pid, std::chrono::milliseconds timeout = 20s);

/// Child side of the address exchange: sends `mine`, receives all ranks' addresses.
std::optional<std::vector<std::vector<std::byte>>> exchange_as_child(Channel& parent, std::span<const std::byte> mine);
/// Parent side (rank 0; children are ranks 1..n): collects the children's addresses and sends
/// everybody the full list.
std::optional<std::vector<std::vector<std::byte>>> exchange_as_parent(std::vector<Child>& children,
                                                                      std::span<const std::byte> mine);

/// In a child: prints a failed check to stderr; use as `if (!check(cond, "what")) return 1;`.
bool check(bool condition, const std::string& what);

}  // namespace tern::transport::ucx_test
