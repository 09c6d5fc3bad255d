// The C ABI: argument checks, the calling thread's last error, and no exception across it.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>

#include "client.h"
#include "tern/tern.h"

struct tern_client {
  std::unique_ptr<tern::client::Client> impl;
};
struct tern_group {
  tern_client* client;
  std::uint32_t handle;
  int rank, nranks;
};
struct tern_request {
  tern_client* client;
  std::shared_ptr<tern::client::RequestState> state;
  std::string error;  // the message after failure, stable for tern_request_error
};

namespace {

using tern::Status;
using tern::StatusCode;

thread_local std::string g_last_error;

tern_status_t to_c(StatusCode code) { return static_cast<tern_status_t>(code); }

tern_status_t fail(const Status& s) {
  g_last_error = s.message();
  return to_c(s.code());
}

tern_status_t fail(tern_status_t code, std::string message) {
  g_last_error = std::move(message);
  return code;
}

tern_status_t ok() {
  g_last_error.clear();
  return TERN_OK;
}

// Runs `fn` and turns an escaping exception (allocation failure, a bug) into a status.
template <typename Fn>
tern_status_t guarded(Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return fail(TERN_OUT_OF_RANGE, "out of memory");
  } catch (const std::exception& e) {
    return fail(TERN_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(TERN_INTERNAL, "internal error: unknown exception");
  }
}

tern_status_t request_status(tern_request* r) {
  if (!r->state->done.load(std::memory_order_acquire)) return TERN_IN_PROGRESS;
  if (r->state->status.is_ok()) return ok();
  r->error = r->state->status.message();
  return fail(r->state->status);
}

}  // namespace

extern "C" {

const char* tern_version(void) { return "0.1.0"; }
const char* tern_last_error(void) { return g_last_error.c_str(); }

const char* tern_status_name(tern_status_t status) {
  switch (status) {
    case TERN_OK: return "ok";
    case TERN_INVALID_ARGUMENT: return "invalid argument";
    case TERN_CORRUPT_DATA: return "corrupt data";
    case TERN_NON_FINITE: return "non-finite";
    case TERN_OUT_OF_RANGE: return "out of range";
    case TERN_UNAVAILABLE: return "unavailable";
    case TERN_TIMEOUT: return "timeout";
    case TERN_PEER_FAILURE: return "peer failure";
    case TERN_INTERNAL: return "internal";
    case TERN_IN_PROGRESS: return "in progress";
  }
  return "unknown status";
}

tern_status_t tern_connect(const char* socket_path, tern_client_t** client) {
  return guarded([&] {
    if (!client) return fail(TERN_INVALID_ARGUMENT, "tern_connect: client is NULL");
    std::string path;
    if (socket_path) path = socket_path;
    else if (const char* env = std::getenv("TERN_SOCKET"); env && *env) path = env;
    else path = "/run/tern/ternd.sock";
    auto c = tern::client::Client::connect(path);
    if (!c) return fail(c.status());
    *client = new tern_client{std::move(*c)};
    return ok();
  });
}

void tern_disconnect(tern_client_t* client) { delete client; }

tern_status_t tern_get_unique_id(tern_client_t* client, tern_unique_id_t* id) {
  return guarded([&] {
    if (!client || !id) return fail(TERN_INVALID_ARGUMENT, "tern_get_unique_id: NULL argument");
    auto text = client->impl->unique_id();
    if (!text) return fail(text.status());
    if (text->size() >= TERN_UNIQUE_ID_MAX) return fail(TERN_INTERNAL, "unique id too long");
    std::memcpy(id->text, text->c_str(), text->size() + 1);
    return ok();
  });
}

tern_status_t tern_group_join(tern_client_t* client, const tern_unique_id_t* id, const tern_group_config_t* config,
                              tern_group_t** group) {
  return guarded([&] {
    if (!client || !id || !config || !group) return fail(TERN_INVALID_ARGUMENT, "tern_group_join: NULL argument");
    if (config->struct_size < sizeof(tern_group_config_t))
      return fail(TERN_INVALID_ARGUMENT, "tern_group_join: config.struct_size is " +
                                             std::to_string(config->struct_size) + ", expected " +
                                             std::to_string(sizeof(tern_group_config_t)));
    const std::size_t len = strnlen(id->text, TERN_UNIQUE_ID_MAX);
    if (len == TERN_UNIQUE_ID_MAX)
      return fail(TERN_INVALID_ARGUMENT, "tern_group_join: the unique id is not terminated");
    if (config->nranks < 1 || config->local_size < 1 || config->nranks % config->local_size != 0 ||
        config->rank < 0 || config->rank >= config->nranks)
      return fail(TERN_INVALID_ARGUMENT, "tern_group_join: rank " + std::to_string(config->rank) + ", nranks " +
                                             std::to_string(config->nranks) + ", local_size " +
                                             std::to_string(config->local_size) + " are inconsistent");
    tern::daemon::protocol::GroupJoin join;
    join.unique_id.assign(id->text, len);
    join.rank = config->rank;
    join.nranks = config->nranks;
    join.local_size = config->local_size;
    join.timeout_ms = config->timeout_ms;
    join.seed = config->seed;
    auto handle = client->impl->join(join, std::chrono::milliseconds(config->timeout_ms ? config->timeout_ms : 30'000));
    if (!handle) return fail(handle.status());
    *group = new tern_group{client, *handle, config->rank, config->nranks};
    return ok();
  });
}

void tern_group_destroy(tern_group_t* group) {
  if (!group) return;
  (void)guarded([&] { return group->client->impl->leave(group->handle).is_ok() ? TERN_OK : TERN_INTERNAL; });
  delete group;
}

int tern_group_rank(const tern_group_t* group) { return group ? group->rank : -1; }
int tern_group_size(const tern_group_t* group) { return group ? group->nranks : -1; }

tern_status_t tern_alloc(tern_client_t* client, size_t bytes, void** ptr) {
  return guarded([&] {
    if (!client || !ptr) return fail(TERN_INVALID_ARGUMENT, "tern_alloc: NULL argument");
    auto p = client->impl->alloc(bytes);
    if (!p) return fail(p.status());
    *ptr = *p;
    return ok();
  });
}

tern_status_t tern_free(tern_client_t* client, void* ptr) {
  return guarded([&] {
    if (!client) return fail(TERN_INVALID_ARGUMENT, "tern_free: client is NULL");
    if (!ptr) return ok();
    Status s = client->impl->free(ptr);
    return s ? ok() : fail(s);
  });
}

tern_status_t tern_register(tern_client_t* client, void* ptr, size_t bytes) {
  return guarded([&] {
    if (!client) return fail(TERN_INVALID_ARGUMENT, "tern_register: client is NULL");
    Status s = client->impl->register_memory(ptr, bytes);
    return s ? ok() : fail(s);
  });
}

tern_status_t tern_deregister(tern_client_t* client, void* ptr) {
  return guarded([&] {
    if (!client) return fail(TERN_INVALID_ARGUMENT, "tern_deregister: client is NULL");
    Status s = client->impl->deregister(ptr);
    return s ? ok() : fail(s);
  });
}

void tern_allreduce_args_init(tern_allreduce_args_t* args) {
  if (!args) return;
  std::memset(args, 0, sizeof *args);
  args->struct_size = sizeof *args;
  args->dtype = TERN_FLOAT32;
  args->op = TERN_MEAN;
  args->scatter_codec = TERN_CODEC_TERNGRAD;
  args->gather_codec = TERN_CODEC_TERNGRAD;
}

tern_status_t tern_allreduce(tern_group_t* group, const tern_allreduce_args_t* args, tern_request_t** request) {
  return guarded([&] {
    if (!group || !args || !request) return fail(TERN_INVALID_ARGUMENT, "tern_allreduce: NULL argument");
    if (args->struct_size < sizeof(tern_allreduce_args_t))
      return fail(TERN_INVALID_ARGUMENT, "tern_allreduce: args.struct_size is " + std::to_string(args->struct_size) +
                                             "; call tern_allreduce_args_init first");
    auto state = group->client->impl->submit(group->handle, *args);
    if (!state) return fail(state.status());
    *request = new tern_request{group->client, std::move(*state), {}};
    return ok();
  });
}

tern_status_t tern_test(tern_request_t* request) {
  return guarded([&] {
    if (!request) return fail(TERN_INVALID_ARGUMENT, "tern_test: request is NULL");
    request->client->impl->wait(request->state, std::chrono::steady_clock::now());
    return request_status(request);
  });
}

tern_status_t tern_wait(tern_request_t* request, int timeout_ms) {
  return guarded([&] {
    if (!request) return fail(TERN_INVALID_ARGUMENT, "tern_wait: request is NULL");
    const auto deadline = timeout_ms < 0 ? request->state->deadline
                                         : std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    if (!request->client->impl->wait(request->state, deadline) && timeout_ms < 0)
      return fail(TERN_TIMEOUT, "the request passed its deadline and ternd did not answer");
    return request_status(request);
  });
}

const char* tern_request_error(const tern_request_t* request) {
  if (!request || !request->state->done.load(std::memory_order_acquire)) return "";
  auto* r = const_cast<tern_request_t*>(request);
  if (r->error.empty() && !r->state->status.is_ok()) r->error = r->state->status.message();
  return r->error.c_str();
}

void tern_request_free(tern_request_t* request) {
  if (!request) return;
  if (!request->state->done.load(std::memory_order_acquire))
    request->client->impl->wait(request->state, request->state->deadline);
  delete request;
}

tern_status_t tern_allreduce_sync(tern_group_t* group, const tern_allreduce_args_t* args) {
  tern_request_t* request = nullptr;
  tern_status_t s = tern_allreduce(group, args, &request);
  if (s != TERN_OK) return s;
  s = tern_wait(request, -1);
  tern_request_free(request);
  return s;
}

tern_status_t tern_daemon_status(tern_client_t* client, char* buffer, size_t capacity, size_t* length) {
  return guarded([&] {
    if (!client || !length || (capacity > 0 && !buffer))
      return fail(TERN_INVALID_ARGUMENT, "tern_daemon_status: NULL argument");
    auto json = client->impl->daemon_status();
    if (!json) return fail(json.status());
    *length = json->size();
    if (capacity < json->size() + 1)
      return fail(TERN_OUT_OF_RANGE, "tern_daemon_status: the status is " + std::to_string(json->size()) +
                                         " bytes; the buffer holds " + std::to_string(capacity));
    std::memcpy(buffer, json->c_str(), json->size() + 1);
    return ok();
  });
}

}  // extern "C"
