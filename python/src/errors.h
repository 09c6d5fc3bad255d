// libtern's status codes as Python exceptions. Every failed call raises a subclass of
// tern.TernError (a RuntimeError) chosen by the status, carrying libtern's message (which says what
// failed and where) and the attributes `status` (the tern_status_t value) and `status_name`.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "tern/tern.h"

namespace tern::python {

/// Creates the exception classes in `m` and the translator that raises them. Once, at import.
void register_errors(pybind11::module_& m);

/// Raises (as a C++ exception the translator turns into the status's Python class) `message`.
[[noreturn]] void throw_status(tern_status_t status, std::string message);

/// Raises the calling thread's tern_last_error() unless `status` is TERN_OK.
void check(tern_status_t status);

}  // namespace tern::python
