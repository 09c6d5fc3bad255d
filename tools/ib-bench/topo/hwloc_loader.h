// Builds a Topology (topo/model.h) from hwloc: this machine, or an XML file exported by
// `lstopo --of xml` elsewhere (how the tests and docs show an 8-GPU node on a machine without one).
#pragma once

#include <string>

#include "tern/common/status.h"
#include "topo/model.h"

namespace tern::ibbench {

/// `xml_path` empty: this machine (CUDA indices from the CUDA runtime when present). Otherwise the
/// XML file (CUDA indices from its "cudaN" OS devices). kInvalidArgument for an unreadable or
/// malformed file, kUnavailable when hwloc cannot load this machine.
Result<Topology> load_topology(const std::string& xml_path = "");

}  // namespace tern::ibbench
