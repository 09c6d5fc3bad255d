// Header-only C++ wrapper of libtern's C API (tern.h): RAII handles and exceptions.
//
// Errors: every failing call throws tern::Error (a std::runtime_error carrying the tern_status_t
// and the message of tern_last_error() / tern_request_error()). Destructors never throw.
// Thread safety: as the C API (see tern.h); the wrapper adds no state of its own.
//
//   tern::Client client;                                   // $TERN_SOCKET or /run/tern/ternd.sock
//   tern::UniqueId id = rank == 0 ? client.unique_id() : receive_from_rank0();
//   tern::Group group(client, id, {rank, nranks, local_size});
//   tern::Buffer buf(client, n * sizeof(float));           // shared with ternd: zero copy
//   tern::AllreduceArgs args(buf.data(), n);                // fp32, mean, terngrad both ways
//   tern::Request r = group.allreduce(args);  ...  r.wait();
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include "tern/tern.h"

namespace tern {

class Error : public std::runtime_error {
 public:
  Error(tern_status_t status, const std::string& message)
      : std::runtime_error(std::string(tern_status_name(status)) + ": " + message), status_(status) {}
  tern_status_t status() const noexcept { return status_; }

 private:
  tern_status_t status_;
};

namespace detail {
inline void check(tern_status_t s) {
  if (s != TERN_OK) throw Error(s, tern_last_error());
}
}  // namespace detail

/// A unique id's text (a credential: do not log it).
struct UniqueId {
  tern_unique_id_t id{};
  std::string text() const { return id.text; }
  static UniqueId from_text(const std::string& text) {
    UniqueId u;
    if (text.size() >= sizeof u.id.text) throw Error(TERN_INVALID_ARGUMENT, "unique id text too long");
    text.copy(u.id.text, text.size());
    return u;
  }
};

class Client {
 public:
  explicit Client(const char* socket_path = nullptr) { detail::check(tern_connect(socket_path, &c_)); }
  ~Client() { tern_disconnect(c_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}

  UniqueId unique_id() {
    UniqueId u;
    detail::check(tern_get_unique_id(c_, &u.id));
    return u;
  }
  std::string daemon_status() {
    std::size_t length = 0;
    std::string out(4096, '\0');
    tern_status_t s = tern_daemon_status(c_, out.data(), out.size(), &length);
    if (s == TERN_OUT_OF_RANGE) {
      out.resize(length + 1);
      s = tern_daemon_status(c_, out.data(), out.size(), &length);
    }
    detail::check(s);
    out.resize(length);
    return out;
  }
  tern_client_t* get() const noexcept { return c_; }

 private:
  tern_client_t* c_ = nullptr;
};

/// Memory from tern_alloc: shared with ternd, freed on destruction.
class Buffer {
 public:
  Buffer(Client& client, std::size_t bytes) : client_(client.get()), bytes_(bytes) {
    detail::check(tern_alloc(client_, bytes, &ptr_));
  }
  ~Buffer() {
    if (ptr_) tern_free(client_, ptr_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const noexcept { return ptr_; }
  std::size_t size() const noexcept { return bytes_; }

 private:
  tern_client_t* client_;
  void* ptr_ = nullptr;
  std::size_t bytes_;
};

/// tern_register for the lifetime of the object.
class Registration {
 public:
  Registration(Client& client, void* ptr, std::size_t bytes) : client_(client.get()), ptr_(ptr) {
    detail::check(tern_register(client_, ptr, bytes));
  }
  ~Registration() { tern_deregister(client_, ptr_); }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

 private:
  tern_client_t* client_;
  void* ptr_;
};

struct AllreduceArgs : tern_allreduce_args_t {
  AllreduceArgs(void* buf, std::size_t n) : tern_allreduce_args_t() {
    tern_allreduce_args_init(this);
    buffer = buf;
    count = n;
  }
};

class Request {
 public:
  explicit Request(tern_request_t* r) noexcept : r_(r) {}
  ~Request() { tern_request_free(r_); }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  Request(Request&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}

  /// True when done; throws Error if the request failed.
  bool test() { return finished(tern_test(r_)); }
  /// Waits up to timeout_ms (< 0: the request's deadline); true when done, false if still pending.
  bool wait(int timeout_ms = -1) { return finished(tern_wait(r_, timeout_ms)); }

 private:
  bool finished(tern_status_t s) {
    if (s == TERN_IN_PROGRESS) return false;
    if (s != TERN_OK) throw Error(s, tern_request_error(r_));
    return true;
  }
  tern_request_t* r_;
};

struct GroupConfig {
  int rank = 0, nranks = 1, local_size = 1;
  unsigned timeout_ms = 0;
  std::uint64_t seed = 0;
};

class Group {
 public:
  Group(Client& client, const UniqueId& id, const GroupConfig& c) {
    tern_group_config_t config{sizeof(tern_group_config_t), c.rank, c.nranks, c.local_size, c.timeout_ms, c.seed};
    detail::check(tern_group_join(client.get(), &id.id, &config, &g_));
  }
  ~Group() { tern_group_destroy(g_); }
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const noexcept { return tern_group_rank(g_); }
  int size() const noexcept { return tern_group_size(g_); }
  Request allreduce(const tern_allreduce_args_t& args) {
    tern_request_t* r = nullptr;
    detail::check(tern_allreduce(g_, &args, &r));
    return Request(r);
  }
  void allreduce_sync(const tern_allreduce_args_t& args) { detail::check(tern_allreduce_sync(g_, &args)); }

 private:
  tern_group_t* g_ = nullptr;
};

}  // namespace tern
