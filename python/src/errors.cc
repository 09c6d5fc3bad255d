#include "errors.h"

#include <array>
#include <exception>
#include <utility>

namespace py = pybind11;

namespace tern::python {
namespace {

// Thrown inside the module, turned into a Python exception at the pybind11 boundary.
struct Failure {
  tern_status_t status;
  std::string message;
};

struct ErrorClass {
  tern_status_t status;
  const char* name;
  PyObject* also;  // a built-in base that fits, or nullptr
};

// Set once at import and never released: the classes live as long as the interpreter.
PyObject* base_class = nullptr;
std::array<PyObject*, 10> class_of_status{};

PyObject* new_class(py::module_& m, const char* name, PyObject* bases) {
  std::string qualified = std::string("tern._tern.") + name;
  PyObject* cls = PyErr_NewException(qualified.c_str(), bases, nullptr);
  if (cls == nullptr) throw py::error_already_set();
  m.add_object(name, py::handle(cls));  // the module's reference
  return cls;
}

}  // namespace

void register_errors(py::module_& m) {
  base_class = new_class(m, "TernError", PyExc_RuntimeError);
  // TERN_TIMEOUT is also a built-in TimeoutError, TERN_INVALID_ARGUMENT also a ValueError, so
  // generic handlers catch them too.
  const ErrorClass classes[] = {
      {TERN_INVALID_ARGUMENT, "InvalidArgumentError", PyExc_ValueError},
      {TERN_CORRUPT_DATA, "CorruptDataError", nullptr},
      {TERN_NON_FINITE, "NonFiniteError", nullptr},
      {TERN_OUT_OF_RANGE, "OutOfRangeError", nullptr},
      {TERN_UNAVAILABLE, "UnavailableError", nullptr},
      {TERN_TIMEOUT, "DeadlineError", PyExc_TimeoutError},
      {TERN_PEER_FAILURE, "PeerFailureError", nullptr},
      {TERN_INTERNAL, "InternalError", nullptr},
  };
  for (const ErrorClass& c : classes) {
    py::tuple bases = c.also ? py::make_tuple(py::handle(base_class), py::handle(c.also))
                             : py::make_tuple(py::handle(base_class));
    class_of_status.at(static_cast<size_t>(c.status)) = new_class(m, c.name, bases.ptr());
  }
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Failure& f) {
      size_t index = static_cast<size_t>(f.status);
      PyObject* cls = index < class_of_status.size() && class_of_status[index] ? class_of_status[index] : base_class;
      py::object exc = py::reinterpret_borrow<py::object>(cls)(f.message);
      exc.attr("status") = static_cast<int>(f.status);
      exc.attr("status_name") = tern_status_name(f.status);
      PyErr_SetObject(cls, exc.ptr());
    }
  });
}

void throw_status(tern_status_t status, std::string message) {
  if (message.empty()) message = std::string(tern_status_name(status)) + " (libtern gave no message)";
  throw Failure{status, std::move(message)};
}

void check(tern_status_t status) {
  if (status != TERN_OK) throw_status(status, tern_last_error());
}

}  // namespace tern::python
