// _tern: the Python binding of libtern's C API (libclient/include/tern/tern.h). The pure-Python
// package `tern` (python/tern) builds the user-facing API and the DDP hook on top of it.
//
// Ownership mirrors the C API's rules with reference counting: a Group, Buffer or Request keeps
// the handles it was made from alive (shared_ptr), so no C handle is freed while a Python object
// can still reach it, and libtern's "don't use a handle during or after its free" can't be broken
// from Python. Blocking calls (connect, join, wait, free of a pending request) release the GIL.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "errors.h"
#include "tern/tern.h"

namespace py = pybind11;

namespace tern::python {
namespace {

using ClientPtr = std::shared_ptr<tern_client_t>;
using GroupPtr = std::shared_ptr<tern_group_t>;

// Memory from tern_alloc, exposed through the buffer protocol (numpy.frombuffer, torch.frombuffer,
// memoryview). Views hold a reference to this object, so the memory outlives every view of it.
class Buffer {
 public:
  Buffer(ClientPtr client, void* ptr, size_t bytes) : client_(std::move(client)), ptr_(ptr), bytes_(bytes) {}
  ~Buffer() { tern_free(client_.get(), ptr_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* ptr() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  ClientPtr client_;
  void* ptr_;
  size_t bytes_;
};

// One submitted allreduce. Keeps its group and the memory it works on (`keep_alive`: the Buffer,
// tensor or array the caller passed) alive until it is freed, since the daemon writes into it.
class Request {
 public:
  Request(GroupPtr group, tern_request_t* request, py::object keep_alive)
      : group_(std::move(group)), request_(request), keep_alive_(std::move(keep_alive)) {}
  ~Request() { release(); }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // True when done (the buffer holds the result), False while pending; raises the request's error.
  bool test() {
    tern_request_t* r = live("test");
    tern_status_t s = tern_test(r);
    return finished(s, r);
  }

  // Waits up to timeout_ms (< 0: the request's own deadline); same results as test().
  bool wait(int timeout_ms) {
    tern_request_t* r = live("wait");
    tern_status_t s;
    {
      py::gil_scoped_release unlocked;
      s = tern_wait(r, timeout_ms);
    }
    return finished(s, r);
  }

  std::string error() const { return request_ ? tern_request_error(request_) : std::string(); }

  // Frees the C request (waiting for it first if pending) and drops the references it held.
  void release() {
    if (request_ == nullptr) return;
    tern_request_t* r = std::exchange(request_, nullptr);
    {
      py::gil_scoped_release unlocked;
      tern_request_free(r);
    }
    keep_alive_ = py::none();
    group_.reset();
  }

 private:
  tern_request_t* live(const char* what) const {
    if (request_ == nullptr) throw_status(TERN_INVALID_ARGUMENT, std::string("Request.") + what + ": the request was freed");
    return request_;
  }
  static bool finished(tern_status_t s, tern_request_t* r) {
    if (s == TERN_OK) return true;
    if (s == TERN_IN_PROGRESS) return false;
    throw_status(s, tern_request_error(r));
  }

  GroupPtr group_;
  tern_request_t* request_;
  py::object keep_alive_;
};

class Group {
 public:
  Group(ClientPtr client, tern_group_t* group)
      : client_(std::move(client)), group_(group, [](tern_group_t* g) { tern_group_destroy(g); }) {}

  int rank() const { return tern_group_rank(group_.get()); }
  int size() const { return tern_group_size(group_.get()); }

  std::unique_ptr<Request> allreduce(std::uintptr_t ptr, size_t count, tern_dtype_t dtype, tern_reduce_op_t op,
                                     tern_codec_t scatter_codec, tern_codec_t gather_codec, std::uint64_t key,
                                     std::uint32_t timeout_ms, py::object keep_alive) {
    tern_allreduce_args_t args;
    tern_allreduce_args_init(&args);
    args.buffer = reinterpret_cast<void*>(ptr);
    args.count = count;
    args.dtype = dtype;
    args.op = op;
    args.scatter_codec = scatter_codec;
    args.gather_codec = gather_codec;
    args.tensor_key = key;
    args.timeout_ms = timeout_ms;
    tern_request_t* request = nullptr;
    check(tern_allreduce(group_.get(), &args, &request));
    return std::make_unique<Request>(group_, request, std::move(keep_alive));
  }

 private:
  ClientPtr client_;  // destroyed after group_ (members are destroyed in reverse order)
  GroupPtr group_;
};

class Client {
 public:
  explicit Client(const std::string& socket_path) {
    tern_client_t* c = nullptr;
    tern_status_t s;
    {
      py::gil_scoped_release unlocked;
      s = tern_connect(socket_path.empty() ? nullptr : socket_path.c_str(), &c);
    }
    check(s);
    client_ = ClientPtr(c, [](tern_client_t* p) { tern_disconnect(p); });
  }

  std::string get_unique_id() {
    tern_unique_id_t id;
    check(tern_get_unique_id(handle(), &id));
    return std::string(id.text);
  }

  std::unique_ptr<Group> join(const std::string& unique_id, int rank, int nranks, int local_size,
                              std::uint32_t timeout_ms, std::uint64_t seed) {
    tern_unique_id_t id;
    if (unique_id.size() >= sizeof(id.text)) {
      throw_status(TERN_INVALID_ARGUMENT, "join: unique id is " + std::to_string(unique_id.size()) +
                                              " characters, at most " + std::to_string(sizeof(id.text) - 1));
    }
    std::memcpy(id.text, unique_id.c_str(), unique_id.size() + 1);
    tern_group_config_t config{};
    config.struct_size = sizeof(config);
    config.rank = rank;
    config.nranks = nranks;
    config.local_size = local_size;
    config.timeout_ms = timeout_ms;
    config.seed = seed;
    tern_group_t* group = nullptr;
    tern_status_t s;
    tern_client_t* c = handle();
    {
      py::gil_scoped_release unlocked;
      s = tern_group_join(c, &id, &config, &group);
    }
    check(s);
    return std::make_unique<Group>(client_, group);
  }

  std::unique_ptr<Buffer> alloc(size_t bytes) {
    void* ptr = nullptr;
    check(tern_alloc(handle(), bytes, &ptr));
    return std::make_unique<Buffer>(client_, ptr, bytes);
  }

  void register_memory(std::uintptr_t ptr, size_t bytes) {
    check(tern_register(handle(), reinterpret_cast<void*>(ptr), bytes));
  }
  void deregister_memory(std::uintptr_t ptr) { check(tern_deregister(handle(), reinterpret_cast<void*>(ptr))); }

  std::string daemon_status() {
    std::string out(4096, '\0');
    size_t length = 0;
    tern_status_t s = tern_daemon_status(handle(), out.data(), out.size(), &length);
    if (s == TERN_OUT_OF_RANGE && length >= out.size()) {
      out.assign(length + 1, '\0');
      s = tern_daemon_status(handle(), out.data(), out.size(), &length);
    }
    check(s);
    out.resize(length);
    return out;
  }

  // Drops this object's reference; the connection closes once no Group, Buffer or Request of it
  // is left (their handles must stay valid while Python can reach them).
  void close() { client_.reset(); }
  bool closed() const { return client_ == nullptr; }

 private:
  tern_client_t* handle() const {
    if (!client_) throw_status(TERN_INVALID_ARGUMENT, "Client: the client was closed");
    return client_.get();
  }
  ClientPtr client_;
};

}  // namespace
}  // namespace tern::python

PYBIND11_MODULE(_tern, m) {
  using namespace tern::python;
  m.doc() = "libtern's C API (tern.h) for Python; use the `tern` package rather than this module";
  register_errors(m);

  py::enum_<tern_codec_t>(m, "Codec")
      .value("fp32", TERN_CODEC_FP32)
      .value("fp16", TERN_CODEC_FP16)
      .value("bf16", TERN_CODEC_BF16)
      .value("terngrad", TERN_CODEC_TERNGRAD)
      .value("ternary_ef", TERN_CODEC_TERNARY_EF)
      .value("sign_ef", TERN_CODEC_SIGN_EF);
  py::enum_<tern_dtype_t>(m, "DType")
      .value("float32", TERN_FLOAT32)
      .value("float16", TERN_FLOAT16)
      .value("bfloat16", TERN_BFLOAT16);
  py::enum_<tern_reduce_op_t>(m, "ReduceOp").value("sum", TERN_SUM).value("mean", TERN_MEAN);

  m.def("version", [] { return std::string(tern_version()); }, "libtern's version, e.g. '0.1.0'");
  m.attr("ABI_VERSION") = TERN_ABI_VERSION;

  py::class_<Buffer>(m, "Buffer", py::buffer_protocol(),
                     "Host memory shared with ternd (Client.alloc); a writable byte buffer")
      .def_property_readonly("ptr", [](const Buffer& b) { return reinterpret_cast<std::uintptr_t>(b.ptr()); })
      .def_property_readonly("nbytes", &Buffer::bytes)
      .def("__len__", &Buffer::bytes)
      .def_buffer([](Buffer& b) {
        return py::buffer_info(b.ptr(), 1, py::format_descriptor<std::uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(b.bytes())}, {1}, /*readonly=*/false);
      });

  py::class_<Request>(m, "Request", "One submitted allreduce")
      .def("test", &Request::test, "True when done, False while pending; raises the request's error")
      .def("wait", &Request::wait, py::arg("timeout_ms"),
           "Waits up to timeout_ms (< 0: the request's deadline): True when done, False if still pending; "
           "raises the request's error")
      .def_property_readonly("error", &Request::error)
      .def("free", &Request::release, "Frees the request (waits for it if pending)");

  py::class_<Group>(m, "Group", "This trainer's membership in a group")
      .def_property_readonly("rank", &Group::rank)
      .def_property_readonly("size", &Group::size)
      .def("allreduce", &Group::allreduce, py::arg("ptr"), py::arg("count"), py::arg("dtype"), py::arg("op"),
           py::arg("scatter_codec"), py::arg("gather_codec"), py::arg("key"), py::arg("timeout_ms"),
           py::arg("keep_alive"),
           "Submits an in-place allreduce of `count` elements at address `ptr` (inside memory from alloc or "
           "register); keep_alive is held until the request is freed");

  py::class_<Client>(m, "Client", "A connection to the node's ternd")
      .def(py::init<const std::string&>(), py::arg("socket_path") = std::string(),
           "Connects; socket_path '' means $TERN_SOCKET, else /run/tern/ternd.sock")
      .def("get_unique_id", &Client::get_unique_id)
      .def("join", &Client::join, py::arg("unique_id"), py::arg("rank"), py::arg("nranks"), py::arg("local_size"),
           py::arg("timeout_ms") = 0, py::arg("seed") = 0)
      .def("alloc", &Client::alloc, py::arg("nbytes"))
      .def("register", &Client::register_memory, py::arg("ptr"), py::arg("nbytes"))
      .def("deregister", &Client::deregister_memory, py::arg("ptr"))
      .def("daemon_status", &Client::daemon_status, "ternd's status as JSON text")
      .def("close", &Client::close)
      .def_property_readonly("closed", &Client::closed);
}
