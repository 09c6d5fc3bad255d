// libtern's internals: the connection to ternd, the rings, memory and requests behind the C API.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "tern/common/status.h"
#include "tern/daemon/protocol.h"
#include "tern/daemon/ring.h"
#include "tern/tern.h"

namespace tern::client {

/// One request's completion, shared by the tern_request handle and the completion path.
struct RequestState {
  std::atomic<bool> done{false};
  Status status;  // written once before `done` is set
  // Host memory registered with tern_register: the result is copied back before `done`.
  void* copy_back_to = nullptr;
  const void* copy_back_from = nullptr;
  std::size_t copy_back_bytes = 0;
  std::chrono::steady_clock::time_point deadline;
};

/// Shared memory this client owns: a memfd mapped here and in the daemon.
struct Arena {
  std::uint32_t id = 0;
  void* base = nullptr;
  std::size_t bytes = 0;      // mapped size (page-rounded)
  void* user = nullptr;       // tern_register'ed host memory staged through this arena, else null
  std::size_t user_bytes = 0;
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> connect(const std::string& socket_path);
  ~Client();

  Result<std::string> unique_id();
  Result<std::uint32_t> join(const daemon::protocol::GroupJoin& args, std::chrono::milliseconds timeout);
  Status leave(std::uint32_t handle);
  Result<void*> alloc(std::size_t bytes);
  Status free(void* ptr);
  Status register_memory(void* ptr, std::size_t bytes);
  Status deregister(void* ptr);
  Result<std::shared_ptr<RequestState>> submit(std::uint32_t group_handle, const tern_allreduce_args_t& args);
  /// Waits for `request` until `deadline`; kInProgress-like: returns false if not done by then.
  bool wait(const std::shared_ptr<RequestState>& request, std::chrono::steady_clock::time_point deadline);
  Result<std::string> daemon_status();
  const std::string& daemon_host() const { return host_; }

 private:
  Client() = default;
  Result<daemon::protocol::Reply> call(const daemon::protocol::Request& request, const int* fds, std::uint16_t nfds,
                                       std::chrono::milliseconds timeout);
  Result<Arena> make_arena(std::size_t bytes);
  void unmap_arena(const Arena& a);
  void completion_loop();
  /// Reaps completions; returns how many. `must`: wait for a concurrent drainer instead of skipping.
  std::size_t drain(bool must);
  void finish(const std::shared_ptr<RequestState>& r, Status status);
  void fail_all(const Status& status);

  std::string socket_path_;
  std::string host_;
  int socket_ = -1;
  std::mutex control_mutex_;  // one control request at a time
  std::atomic<bool> dead_{false};
  Status dead_reason_;  // under mutex_

  void* ring_base_ = nullptr;
  std::size_t ring_bytes_ = 0;
  daemon::ring::RingView ring_;
  int submit_efd_ = -1, complete_efd_ = -1, wake_efd_ = -1;
  std::mutex submit_mutex_;  // the submission producer
  std::mutex drain_mutex_;   // the completion consumer
  std::thread completion_thread_;
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;  // guards below
  std::condition_variable cv_;
  std::map<std::uintptr_t, Arena> arenas_;  // by base address (tern_alloc and staging arenas)
  std::map<std::uintptr_t, std::uintptr_t> registered_;  // user ptr -> staging arena base
  struct CudaRegion {
    std::size_t bytes = 0;          // registered range from the user pointer
    std::uintptr_t alloc_base = 0;  // offsets sent to the daemon are relative to this
    std::uint32_t id = 0;           // the daemon's registration id
  };
  std::map<std::uintptr_t, CudaRegion> cuda_regions_;  // by user pointer
  std::unordered_map<std::uint64_t, std::shared_ptr<RequestState>> pending_;
  std::uint64_t next_user_data_ = 1;
};

}  // namespace tern::client
