// A direct, single-threaded computation of what Communicator::allreduce produces, from all ranks'
// inputs: no pipeline, no transport. Used by tests and by tern-bench's #wrong column to check
// the engine bit for bit. Residuals start at zero (the state of a fresh tensor key).
#pragma once

#include <cstdint>
#include <vector>

#include "tern/common/status.h"
#include "tern/transport/collective.h"

namespace tern::collective {

/// inputs[r] holds rank r's `count` elements (raw bytes of options.dtype). Returns the result bytes
/// every rank must hold after operation number `op` (1 for a communicator's first allreduce).
Result<std::vector<std::uint8_t>> reference_allreduce(const std::vector<std::vector<std::uint8_t>>& inputs,
                                                      std::size_t count, const AllreduceOptions& options,
                                                      const CommunicatorOptions& comm_options, std::uint64_t op);

}  // namespace tern::collective
